"""Model-server backends behind one Protocol (`base.ModelBackend`); `build_backend` picks one by name."""

from __future__ import annotations

import httpx

from ..config import WorkerConfig
from ._http import build_http_client
from .base import ChatEnd, ChatEvent, ChatRequest, ModelBackend, TextDelta
from .ollama import OllamaBackend
from .openai_compatible import OpenAICompatibleBackend

__all__ = [
    "ChatEnd",
    "ChatEvent",
    "ChatRequest",
    "ModelBackend",
    "OllamaBackend",
    "OpenAICompatibleBackend",
    "TextDelta",
    "build_backend",
    "build_http_client",
]


def build_backend(config: WorkerConfig, client: httpx.AsyncClient) -> ModelBackend:
    """The backend `config.backend` names, talking to `config.model_url` through `client`."""
    if config.backend == "ollama":
        return OllamaBackend(client, config.model_url, keep_alive=config.keep_alive)
    return OpenAICompatibleBackend(client, config.model_url)
