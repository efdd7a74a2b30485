"""Pete: a property-management voice assistant's LLM on RunPod serverless, operated over MCP.

The core and its wire contracts are importable from here; faces live in `pete_mcp.server`
(MCP), `pete_mcp.dashboard_api` and `pete_vapi`.
"""

from __future__ import annotations

from .contract import ChatJob, ChatOptions, ChatResult, ControlJob, Message, OpenAIJob, StreamChunk
from .core import ChatTurn, Core, Reply, SwitchResult, build_core
from .errors import (
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
    StoreError,
)
from .settings import Settings

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
