import importlib
from types import ModuleType

import pytest

# Every package with a public door: its `__all__` is sorted and names exactly what it exports.
PACKAGES = [
    "pete_mcp",
    "pete_mcp.core",
    "pete_mcp.metrics",
    "pete_mcp.alerts",
    "pete_mcp.runpod",
    "pete_mcp.routing",
    "pete_mcp.gateway",
    "pete_mcp.ops",
    "pete_mcp.faces",
    "pete_mcp.faces.mcp",
    "pete_mcp.cli",
    "pete_mcp.local.localpod",
    "pete_vapi",
    "pete_vapi.emergency",
]


def _isort_style(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_the_public_names_sorted(name: str) -> None:
    package = importlib.import_module(name)
    public = {n for n in vars(package) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if isinstance(getattr(package, n), ModuleType)}
    assert sorted(package.__all__, key=_isort_style) == package.__all__
    assert set(package.__all__) == public - modules
