"""The real local model server (llama.cpp + SmolLM2 and gemma), started once per test run.

Tests that use `model_server` talk to a real `python -m llama_cpp.server` on a free loopback
port. Without the `local` extra the fixture skips with the reason; CI installs the extra.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pete_mcp.errors import ConfigError
from pete_mcp.model_server import GEMMA_ALIAS, SMOLLM2_ALIAS, ModelServer


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
def model_server(request: pytest.FixtureRequest) -> Iterator[RunningModelServer]:
    """A real llama.cpp server with SmolLM2 (`chat_model`) and gemma (`base_model`), on a free port."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed: run `uv sync --extra local` for the real-model tests")
    # The assembled gemma GGUF (253 MB) is cached across runs in pytest's cache directory.
    data_dir = request.config.cache.mkdir("pete-model-server") if request.config.cache else None
    if data_dir is None:
        pytest.skip("pytest's cache directory is disabled (-p no:cacheprovider); the model server needs it")
    server = ModelServer(data_dir=data_dir, port=0, n_threads=2)
    try:
        server.start()
    except ConfigError as err:
        pytest.skip(f"local model unavailable: {err}")
    try:
        yield RunningModelServer(server)
    finally:
        server.stop()
