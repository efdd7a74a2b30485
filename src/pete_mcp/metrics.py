"""Request metrics recorded by the core; one snapshot serves every face.

(Minimal first version: the metrics issue grows this into histograms, rollups and
Prometheus exposition without changing `record`.)
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Metrics", "RequestRecord"]


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


class Metrics:
    def __init__(self, keep: int = 10_000) -> None:
        self.recent: deque[RequestRecord] = deque(maxlen=keep)
        self.active_jobs = 0

    def record(self, rec: RequestRecord) -> None:
        self.recent.append(rec)

    def snapshot(self) -> dict[str, Any]:
        recs = list(self.recent)
        ok = [r for r in recs if r.outcome == "ok"]
        return {
            "requests": len(recs),
            "errors": len(recs) - len(ok),
            "active_jobs": self.active_jobs,
            "last": asdict(recs[-1]) if recs else None,
        }
