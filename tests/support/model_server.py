"""The real local model server (llama.cpp + SmolLM2 and gemma), started once per test run.

Tests that use `model_server` talk to a real `python -m llama_cpp.server` on a free loopback
port. Without the `local` extra the fixture skips with the reason; CI installs the extra.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pete_mcp.core.errors import ConfigError
from pete_mcp.local.model_server import GEMMA_ALIAS, SMOLLM2_ALIAS, ModelServer
from tests.support.require import missing, require


@dataclass(frozen=True)
class RunningModelServer:
    """What a test needs to know about the running server."""

    server: ModelServer
    chat_model: str = SMOLLM2_ALIAS
    base_model: str = GEMMA_ALIAS

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def models(self) -> list[str]:
        return list(self.server.models)

    def log_text(self) -> str:
        return self.server.log_text()


@pytest.fixture(scope="session")
def model_data_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where model servers keep the assembled gemma GGUF (253 MB): pytest's cache, kept across runs."""
    cache = getattr(request.config, "cache", None)
    return cache.mkdir("pete-model-server") if cache is not None else tmp_path_factory.mktemp("pete-model-server")


@pytest.fixture(scope="session")
def model_server(model_data_dir: Path) -> Iterator[RunningModelServer]:
    """A real llama.cpp server with SmolLM2 (`chat_model`) and gemma (`base_model`), on a free port."""
    require(
        importlib.util.find_spec("llama_cpp"),
        "llama-cpp-python is not installed: run `uv sync --extra local` for the real-model tests",
    )
    server = ModelServer(data_dir=model_data_dir, port=0, n_threads=2)
    try:
        server.start()
    except ConfigError as err:
        missing(f"the local model server did not start: {err}")
    try:
        yield RunningModelServer(server)
    finally:
        server.stop()
