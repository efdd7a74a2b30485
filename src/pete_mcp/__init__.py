"""Pete: a property-management voice assistant's LLM on RunPod serverless, operated over MCP.

The core and its wire contracts are importable from here. The rooms are subpackages
(`core`, `metrics`, `alerts`, `runpod`, `routing`, `gateway`, `ops`, `faces`, `local`, `cli`);
see docs/architecture.md. The faces live in `pete_mcp.faces` and `pete_vapi`.
"""

from __future__ import annotations

from pete_mcp.contract import ChatJob, ChatOptions, ChatResult, ControlJob, Message, OpenAIJob, StreamChunk
from pete_mcp.core import (
    AuthError,
    ConfigError,
    DeployError,
    InputError,
    JobFailed,
    NotFound,
    PeteError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    Settings,
    StoreError,
)
from pete_mcp.gateway import ChatTurn, Core, Reply, SwitchResult, build_core

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "ChatJob",
    "ChatOptions",
    "ChatResult",
    "ChatTurn",
    "ConfigError",
    "ControlJob",
    "Core",
    "DeployError",
    "InputError",
    "JobFailed",
    "Message",
    "NotFound",
    "OpenAIJob",
    "PeteError",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "Reply",
    "Settings",
    "StoreError",
    "StreamChunk",
    "SwitchResult",
    "build_core",
]
