"""Routing: the router, races between providers, the breaker, hedging, switching, and one
module per provider backend under `providers/`.
"""

from __future__ import annotations

from ._race import StopHandle
from .breaker import BreakerPolicy
from .hedging import HedgeBudget, HedgePolicy
from .providers.ollama import OllamaProvider
from .providers.openai_compatible import OpenAICompatibleProvider
from .providers.runpod import RunPodProvider
from .providers.runpod_lb import RunPodLBProvider, WorkerAffinity
from .router import Router, RouterStats, Watchdogs
from .switching import SwitchRecord, record_switch, switch_error, switch_history, warm_and_verify

__all__ = [
    "BreakerPolicy",
    "HedgeBudget",
    "HedgePolicy",
    "OllamaProvider",
    "OpenAICompatibleProvider",
    "Router",
    "RouterStats",
    "RunPodLBProvider",
    "RunPodProvider",
    "StopHandle",
    "SwitchRecord",
    "Watchdogs",
    "WorkerAffinity",
    "record_switch",
    "switch_error",
    "switch_history",
    "warm_and_verify",
]
