"""Fault injection: what tests and benchmarks can make the local endpoint do wrong on purpose.

- `fail_route(route, status, count=, share=)`: answer 429 or 5xx on a route, for the next
  `count` calls, or for a `share` of calls (or both: a share of calls until `count` fired).
- `slow_stream(delay_s)`: hold each worker stream post for `delay_s` before recording the
  chunk, so the worker's generator (which awaits each post) slows down too.
- `stall_cold_start(extra_s, share=, count=)`: extra cold-start delay for new workers.
- `stall_jobs(extra_s, share=, count=)`: keep new jobs unavailable to workers for `extra_s`.
- `crash_on_start(share=, count=)`: new worker processes crash during start (a bad image):
  they print a traceback to their log and exit 1 before asking for a job, so the
  supervisor restarts them with backoff, as RunPod does with a crash-looping image.

Killing a worker mid-job needs the processes, so it lives on `LocalPod.kill_worker`. The same
plan is reachable over HTTP (`/_admin/faults`) for benchmarks running in another process.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

from ._errors import InvalidRequest

__all__ = ["PUBLIC_ROUTES", "ROUTES", "WORKER_ROUTES", "Faults"]

PUBLIC_ROUTES = frozenset(
    {"run", "runsync", "status", "status-sync", "stream", "cancel", "retry", "purge-queue", "health", "openai"}
)
WORKER_ROUTES = frozenset({"job-take", "job-done", "job-stream", "ping", "job-stop"})
ROUTES = PUBLIC_ROUTES | WORKER_ROUTES


@dataclass
class _Rule:
    """Fires on a share of events (1.0 = every one), at most `remaining` times (None = forever)."""

    share: float
    remaining: int | None

    def fires(self, rng: random.Random) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.share < 1.0 and rng.random() >= self.share:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True

    @property
    def spent(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


@dataclass
class _RouteError(_Rule):
    route: str
    status: int


@dataclass
class _Stall(_Rule):
    extra_s: float


class Faults:
    """The active fault plan. A seeded `random.Random` makes share-based faults repeatable."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._route_errors: list[_RouteError] = []
        self._cold_start_stalls: list[_Stall] = []
        self._job_stalls: list[_Stall] = []
        self._start_crashes: list[_Rule] = []
        self.stream_delay_s = 0.0

    # --- arming

    def fail_route(
        self, route: str, status: int = 429, *, count: int | None = None, share: float | None = None
    ) -> None:
        """Answer `status` on `route` ("*" = every public route)."""
        if route != "*" and route not in ROUTES:
            raise InvalidRequest(f"Unknown route {route!r} for a fault; use one of {sorted(ROUTES)} or '*'.")
        if not (status == 429 or 500 <= status <= 599):
            raise InvalidRequest(f"A route fault answers 429 or 5xx, not {status}.")
        self._route_errors.append(_RouteError(route=route, status=status, **_rule(count, share)))

    def slow_stream(self, delay_s: float) -> None:
        if delay_s < 0:
            raise InvalidRequest("A stream delay must be ≥ 0 seconds.")
        self.stream_delay_s = delay_s

    def stall_cold_start(self, extra_s: float, *, share: float | None = None, count: int | None = None) -> None:
        self._cold_start_stalls.append(_Stall(extra_s=_non_negative(extra_s), **_rule(count, share)))

    def stall_jobs(self, extra_s: float, *, share: float | None = None, count: int | None = None) -> None:
        self._job_stalls.append(_Stall(extra_s=_non_negative(extra_s), **_rule(count, share)))

    def crash_on_start(self, *, share: float | None = None, count: int | None = None) -> None:
        """Make new worker processes crash during start (`count` starts, or a `share` of them)."""
        self._start_crashes.append(_Rule(**_rule(count, share)))

    def clear(self) -> None:
        self._route_errors.clear()
        self._cold_start_stalls.clear()
        self._job_stalls.clear()
        self._start_crashes.clear()
        self.stream_delay_s = 0.0

    # --- firing

    def route_failure(self, route: str) -> int | None:
        """The status to answer instead of serving `route`, if a fault fires now."""
        for rule in self._route_errors:
            matches = rule.route == route or (rule.route == "*" and route in PUBLIC_ROUTES)
            if matches and rule.fires(self._rng):
                return rule.status
        return None

    def cold_start_extra_s(self) -> float:
        return sum(stall.extra_s for stall in self._cold_start_stalls if stall.fires(self._rng))

    def job_stall_s(self) -> float:
        return sum(stall.extra_s for stall in self._job_stalls if stall.fires(self._rng))

    def start_crashes(self) -> bool:
        """Should the worker starting now crash during its start?"""
        return any([rule.fires(self._rng) for rule in self._start_crashes])

    def snapshot(self) -> dict[str, Any]:
        """What is armed (spent rules left out), for `GET /_admin/faults`."""
        return {
            "route_errors": [asdict(r) for r in self._route_errors if not r.spent],
            "cold_start_stalls": [asdict(s) for s in self._cold_start_stalls if not s.spent],
            "job_stalls": [asdict(s) for s in self._job_stalls if not s.spent],
            "start_crashes": [asdict(r) for r in self._start_crashes if not r.spent],
            "stream_delay_s": self.stream_delay_s,
        }


def _rule(count: int | None, share: float | None) -> dict[str, Any]:
    if count is not None and count < 1:
        raise InvalidRequest("A fault's count must be ≥ 1.")
    if share is not None and not 0.0 < share <= 1.0:
        raise InvalidRequest("A fault's share must be in (0, 1].")
    return {"remaining": count, "share": 1.0 if share is None else share}


def _non_negative(seconds: float) -> float:
    if seconds < 0:
        raise InvalidRequest("A stall must be ≥ 0 seconds.")
    return seconds
