"""The core every face shares: settings, errors, events, storage, conversations, the model
registry, the provider protocol and the property desk. It imports nothing else of Pete's
but the job contract.
"""

from __future__ import annotations

from .conversations import DEFAULT_RESERVE_TOKENS, Conversations
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
from .events import Event, EventBus, Subscription
from .models import ModelRegistry, ModelSpec, Route, served_options
from .openai_body import chat_body
from .provider import (
    CONVERSATION,
    Completion,
    JobStarted,
    ModelProvider,
    ProviderHealth,
    Readiness,
    ReportsReadiness,
    StreamEvent,
    TextDelta,
    WarmsForCalls,
    close_stream,
)
from .settings import Settings
from .sse import DONE, iter_sse_data, sse_frame
from .store import Store

__all__ = [
    "CONVERSATION",
    "DEFAULT_RESERVE_TOKENS",
    "DONE",
    "AuthError",
    "Completion",
    "ConfigError",
    "Conversations",
    "DeployError",
    "Event",
    "EventBus",
    "InputError",
    "JobFailed",
    "JobStarted",
    "ModelProvider",
    "ModelRegistry",
    "ModelSpec",
    "NotFound",
    "PeteError",
    "ProviderError",
    "ProviderHealth",
    "ProviderTimeout",
    "ProviderUnavailable",
    "Readiness",
    "ReportsReadiness",
    "Route",
    "Settings",
    "Store",
    "StoreError",
    "StreamEvent",
    "Subscription",
    "TextDelta",
    "WarmsForCalls",
    "chat_body",
    "close_stream",
    "iter_sse_data",
    "served_options",
    "sse_frame",
]
