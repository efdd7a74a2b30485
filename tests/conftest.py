"""Shared test set-up. Fixture modules live in tests/support/ and are loaded as plugins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# `require` first: the other support modules import it, and pytest rewrites asserts only on first import.
pytest_plugins = sorted(
    (f"tests.support.{p.stem}" for p in (Path(__file__).parent / "support").glob("*.py") if p.stem != "__init__"),
    key=lambda name: (name != "tests.support.require", name),
)

# The runpod SDK's worker must never try to reach the internet in tests.
os.environ.setdefault("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "true")
os.environ.setdefault("RUNPOD_SKIP_GPU_CHECK", "true")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """Tests may set environment variables; put the environment back afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
