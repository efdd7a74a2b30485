"""Missing dependencies: a skip on a laptop, a failure in CI.

A real-model, Node, Chromium or Postgres test that skips in CI leaves the run green while
testing nothing, so under `CI` (any value but empty, `0`, `false`, `no`) the helpers here fail
the test instead, with the same reason a person would read on a skip.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType
from typing import NoReturn

import pytest

__all__ = ["in_ci", "missing", "require", "require_module"]


def in_ci() -> bool:
    """True when the `CI` environment variable is set to a true-ish value (GitHub Actions sets `true`)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> NoReturn:
    """Fail under CI, skip otherwise: a dependency the test needs is not here.

    Works inside tests and fixtures and at module level (a module-level failure is a
    collection error, which fails the run too).
    """
    if in_ci():
        pytest.fail(f"missing in CI (this would be a skip outside CI): {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require(condition: object, reason: str) -> None:
    """`missing(reason)` unless `condition` is true."""
    if not condition:
        missing(reason)


def require_module(name: str, reason: str) -> ModuleType:
    """Import `name`, or `missing(reason)`: the CI-failing form of `pytest.importorskip`."""
    try:
        found = importlib.util.find_spec(name.split(".")[0]) is not None
    except ValueError:
        found = False
    if not found:
        missing(reason)
    try:
        return importlib.import_module(name)
    except ImportError as err:
        missing(f"{reason} ({err})")
