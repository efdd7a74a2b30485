"""The core every face shares: settings, errors, events, storage, conversations, the model
registry, the provider protocol and the property desk. It imports nothing else of Pete's
but the job contract.
"""

from __future__ import annotations

from .conversations import DEFAULT_RESERVE_TOKENS, Conversations, TokenCount, estimate_tokens, fit_prompt
from .errors import (
    AuthError,
    BodyTooLarge,
    Cancelled,
    ConfigError,
    DeployError,
    InputError,
    JobFailed,
    JsonInputError,
    NotFound,
    PeteError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    StoreError,
    StoreUnavailable,
)
from .events import Event, EventBus, Subscription
from .jsonwire import MAX_DEPTH, loads_strict, parse_model, validation_message
from .models import ModelRegistry, ModelSpec, Route, served_options
from .openai_body import StreamedReply, chat_body
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
    capable,
    close_stream,
)
from .settings import Settings
from .sse import DONE, iter_sse_data, sse_frame
from .store import Store, store_from_settings

__all__ = [
    "CONVERSATION",
    "DEFAULT_RESERVE_TOKENS",
    "DONE",
    "MAX_DEPTH",
    "AuthError",
    "BodyTooLarge",
    "Cancelled",
    "Completion",
    "ConfigError",
    "Conversations",
    "DeployError",
    "Event",
    "EventBus",
    "InputError",
    "JobFailed",
    "JobStarted",
    "JsonInputError",
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
    "StoreUnavailable",
    "StreamEvent",
    "StreamedReply",
    "Subscription",
    "TextDelta",
    "TokenCount",
    "WarmsForCalls",
    "capable",
    "chat_body",
    "close_stream",
    "estimate_tokens",
    "fit_prompt",
    "iter_sse_data",
    "loads_strict",
    "parse_model",
    "served_options",
    "sse_frame",
    "store_from_settings",
    "validation_message",
]
