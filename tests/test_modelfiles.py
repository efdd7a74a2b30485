"""The Modelfiles baked into the worker image serve each model as the registry says."""

from __future__ import annotations

import re

import pytest
from gpu_handler import JAMIE_MODEL

from pete_mcp.core.models import PRODUCTION_MODELS, ModelSpec
from tests.test_dockerfile import context_path, created

SPECS = {spec.primary.model: spec for spec in PRODUCTION_MODELS}


def parameters(modelfile: str) -> dict[str, float | int]:
    """A Modelfile's single-valued `PARAMETER name value` lines (numbers only; `stop` may repeat)."""
    found: dict[str, float | int] = {}
    for name, value in re.findall(r"^PARAMETER (\w+) (\S+)$", context_path(modelfile).read_text(), re.MULTILINE):
        if name != "stop":
            found[name] = int(value) if re.fullmatch(r"-?\d+", value) else float(value)
    return found


@pytest.mark.parametrize(("tag", "modelfile"), sorted(created().items()))
def test_each_modelfile_sets_the_registered_context_window_and_parameters(tag: str, modelfile: str) -> None:
    spec: ModelSpec = SPECS[tag]
    assert parameters(modelfile) == {"num_ctx": spec.context_window, **dict(spec.parameters)}


def test_jamie_is_served_with_the_window_its_conversations_are_trimmed_to() -> None:
    assert parameters(created()[JAMIE_MODEL])["num_ctx"] == SPECS[JAMIE_MODEL].context_window == 8192
