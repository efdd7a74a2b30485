"""The gateway core: `Core`, the one object every face shares, and `build_core`, the one place
that wires the rooms below it (store, registry, providers, router, metrics, events).
"""

from __future__ import annotations

from ._build import breaker_policy, build_core, default_providers, fallback_routes, hedge_policy
from ._core import ChatEvent, ChatTurn, Core, Reply, SwitchResult, new_conversation_id

__all__ = [
    "ChatEvent",
    "ChatTurn",
    "Core",
    "Reply",
    "SwitchResult",
    "breaker_policy",
    "build_core",
    "default_providers",
    "fallback_routes",
    "hedge_policy",
    "new_conversation_id",
]
