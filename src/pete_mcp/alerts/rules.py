"""Alert rules: each turns the current metrics (and, for some, core events) into findings.

A rule's `for_s` is how long its condition must hold before the engine fires it, like a
Prometheus rule's `for:`. Keys are stable per failure mode, so a condition that holds for an
hour is one alert, not one per evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pete_mcp.core import Event, Settings
from pete_mcp.metrics import Metrics

from .base import Finding

__all__ = [
    "DeployFailed",
    "EndpointDown",
    "ErrorRateHigh",
    "FailoverActive",
    "NoWorkersWhileQueued",
    "Rule",
    "StoreWritesLost",
    "StoreWritesWaiting",
    "TtftOverBudget",
    "default_rules",
]


class Rule(Protocol):
    name: str
    for_s: float

    def check(self, metrics: Metrics, now: float) -> list[Finding]: ...

    def observe(self, event: Event) -> None: ...


class _StateRule:
    """A rule that only reads metrics."""

    def observe(self, event: Event) -> None:
        return None


@dataclass
class EndpointDown(_StateRule):
    """The RunPod endpoint does not answer `/health` (unreachable, refused, or erroring)."""

    for_s: float = 30.0
    name: str = "endpoint_down"

    def check(self, metrics: Metrics, now: float) -> list[Finding]:
        pod = metrics.runpod
        if pod is None or pod.live or pod.reachable:
            return []
        return [Finding(f"{self.name}:{pod.provider}", self.name, "critical", "RunPod endpoint down", pod.detail)]


@dataclass
class NoWorkersWhileQueued(_StateRule):
    """Jobs wait in the queue and no worker is idle, ready or running to take them."""

    for_s: float = 60.0
    name: str = "no_workers"

    def check(self, metrics: Metrics, now: float) -> list[Finding]:
        pod = metrics.runpod
        if pod is None or not pod.reachable or pod.in_queue <= 0 or pod.serving_workers > 0:
            return []
        states = ", ".join(f"{state} {n}" for state, n in sorted(pod.workers.items())) or "none reported"
        return [
            Finding(
                f"{self.name}:{pod.provider}",
                self.name,
                "critical",
                "RunPod jobs are queued but no worker serves them",
                f"{pod.in_queue} job(s) in the queue; workers: {states}.",
            )
        ]


@dataclass
class TtftOverBudget(_StateRule):
    """p95 time to first token over the window exceeds the budget."""

    budget_s: float
    window_s: float = 300.0
    min_requests: int = 5
    for_s: float = 0.0
    name: str = "ttft_over_budget"

    def check(self, metrics: Metrics, now: float) -> list[Finding]:
        stats = metrics.window(self.window_s)
        p95 = stats.ttft_p95
        if p95 is None or stats.requests - stats.errors < self.min_requests or p95 <= self.budget_s:
            return []
        return [
            Finding(
                self.name,
                self.name,
                "warning",
                "Time to first token over budget",
                f"p95 {p95:.2f} s over the last {self.window_s:.0f} s (budget {self.budget_s:.2f} s, "
                f"{stats.requests - stats.errors} answered requests).",
            )
        ]


@dataclass
class ErrorRateHigh(_StateRule):
    threshold: float
    window_s: float = 300.0
    min_requests: int = 5
    for_s: float = 0.0
    name: str = "error_rate"

    def check(self, metrics: Metrics, now: float) -> list[Finding]:
        stats = metrics.window(self.window_s)
        rate = stats.error_rate
        if rate is None or stats.requests < self.min_requests or rate <= self.threshold:
            return []
        return [
            Finding(
                self.name,
                self.name,
                "warning",
                "Error rate over threshold",
                f"{stats.errors} of {stats.requests} requests ({rate:.0%}) failed in the last "
                f"{self.window_s:.0f} s (threshold {self.threshold:.0%}).",
            )
        ]


@dataclass
class DeployFailed(_StateRule):
    """The most recent deploy failed (resolved by the next deploy that does not)."""

    for_s: float = 0.0
    name: str = "deploy_failed"

    def check(self, metrics: Metrics, now: float) -> list[Finding]:
        if not metrics.deploys or "fail" not in metrics.deploys[0].status.lower():
            return []
        last = metrics.deploys[0]
        detail = f"{last.kind} of {last.image} ended {last.status}" + (f": {last.detail}" if last.detail else ".")
        return [Finding(self.name, self.name, "critical", "Deploy failed", detail)]


@dataclass
class FailoverActive:
    """A model is being answered by a fallback provider (router `failover.started`, hedges aside).

    The router announces each request's failover; the alert ends when the failed provider is
    back: `provider.up` for it, a `request.done` it answered, or a `failover.ended` it won.
    """

    for_s: float = 0.0
    name: str = "failover"
    active: dict[tuple[str, str], Finding] = field(default_factory=dict)

    def observe(self, event: Event) -> None:
        data = event.data
        provider = str(data.get("provider", ""))
        if event.kind == "failover.started":
            if data.get("mode") == "hedge":
                return  # a hedge races a slow first token; slowness is the TTFT rule's business
            alias, to = str(data.get("alias", "?")), str(data.get("to", "?"))
            self.active[(alias, provider)] = Finding(
                f"{self.name}:{alias}:{provider}",
                self.name,
                "info",
                f"Failover: {alias} moved from {provider} to {to}",
                str(data.get("reason", "")),
            )
        elif event.kind == "failover.ended":
            alias = data.get("alias")
            for key in [k for k in self.active if provider in ("", k[1]) and alias in (None, k[0])]:
                del self.active[key]
        elif event.kind == "provider.up" or (event.kind == "request.done" and data.get("outcome") == "ok"):
            for key in [k for k in self.active if k[1] == provider]:
                del self.active[key]

    def check(self, metrics: Metrics, now: float) -> list[Finding]:
        return list(self.active.values())


@dataclass
class StoreWritesWaiting(_StateRule):
    """This replica cannot reach its database: writes wait in memory to be replayed.

    Evaluated on every replica (`per_replica`), not only the leader: with the database away
    nobody can hold the lead, and each replica knows only its own spool.
    """

    for_s: float = 30.0
    name: str = "store_writes_waiting"
    per_replica: bool = True

    def check(self, metrics: Metrics, now: float) -> list[Finding]:
        s = metrics.storage
        if s is None or s.pending_writes <= 0:
            return []
        return [
            Finding(
                f"{self.name}:{s.replica}",
                self.name,
                "warning",
                "Database unreachable: writes are waiting",
                f"{s.pending_writes} write(s) on replica {s.replica} wait for the {s.engine} database; "
                "calls are still answered and the writes are replayed when it is back.",
            )
        ]


@dataclass
class StoreWritesLost(_StateRule):
    """Writes were dropped (the spool overflowed, or the database refused a replay); holds `hold_s`."""

    hold_s: float = 900.0
    for_s: float = 0.0
    name: str = "store_writes_lost"
    per_replica: bool = True

    def check(self, metrics: Metrics, now: float) -> list[Finding]:
        s = metrics.storage
        if s is None or s.last_loss_at is None or now - s.last_loss_at > self.hold_s:
            return []
        return [
            Finding(
                f"{self.name}:{s.replica}",
                self.name,
                "critical",
                "Conversation writes were lost",
                f"{s.lost_writes} write(s) on replica {s.replica} could not be stored "
                f"(STORE_SPOOL_LIMIT reached or refused on replay).",
            )
        ]


def default_rules(settings: Settings) -> list[Rule]:
    """The rules `pete serve` runs, tuned by the ALERT_* settings."""
    return [
        EndpointDown(for_s=settings.alert_down_for_s),
        NoWorkersWhileQueued(for_s=settings.alert_queue_stall_s),
        TtftOverBudget(settings.ttft_budget_s, settings.alert_ttft_window_s, settings.alert_min_requests),
        ErrorRateHigh(settings.error_rate_threshold, settings.alert_error_window_s, settings.alert_min_requests),
        DeployFailed(),
        FailoverActive(),
        StoreWritesWaiting(),
        StoreWritesLost(),
    ]
