"""The gateway core: `Core`, the one object every face shares, and `build_core`, the one place
that wires the rooms below it (store, registry, providers, router, metrics, events).
"""

from __future__ import annotations

from ._build import breaker_policy, build_core, default_providers, fallback_routes, hedge_policy
from ._calls import CallBoard, CallState, LiveCall
from ._core import ChatEvent, ChatTurn, Core, Reply, SwitchResult, new_conversation_id
from ._http import outbound_http
from ._jobs import JobBook, JobEntry

__all__ = [
    "CallBoard",
    "CallState",
    "ChatEvent",
    "ChatTurn",
    "Core",
    "JobBook",
    "JobEntry",
    "LiveCall",
    "Reply",
    "SwitchResult",
    "breaker_policy",
    "build_core",
    "default_providers",
    "fallback_routes",
    "hedge_policy",
    "new_conversation_id",
    "outbound_http",
]
