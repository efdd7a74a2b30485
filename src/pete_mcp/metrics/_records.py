"""The record types every metrics module reads: one finished request, and the series key.

A leaf: it imports nothing of Pete's, so recording, aggregation and rollups can all use it
without importing each other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["DAY_S", "RequestRecord", "SeriesKey"]

DAY_S = 86_400.0
SeriesKey = tuple[str, str]  # (provider, model)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    provider: str
    model: str
    alias: str
    source: str
    outcome: str  # "ok" | error code
    ttft_s: float | None = None
    total_s: float = 0.0
    output_tokens: int = 0
    error: str | None = None
    at: float = field(default_factory=time.time)
    input_tokens: int = 0
    finish_reason: str = ""
