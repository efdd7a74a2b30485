"""Alert rules and the engine: when each rule fires, de-duplication, repeats and recovery."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pete_mcp.alerts import (
    AlertDeliveryError,
    AlertEngine,
    DeployFailed,
    EndpointDown,
    ErrorRateHigh,
    FailoverActive,
    Notice,
    NoWorkersWhileQueued,
    TtftOverBudget,
    default_rules,
)
from pete_mcp.core.events import Event
from pete_mcp.core.provider import ProviderHealth
from pete_mcp.core.settings import Settings
from pete_mcp.metrics import Metrics, RequestRecord
from pete_mcp.metrics.snapshot import DeployEntry

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingSink:
    name: str = "recording"
    notices: list[tuple[str, str]] = field(default_factory=list)

    async def send(self, notice: Notice) -> None:
        self.notices.append((notice.kind, notice.alert.key))


@dataclass
class BrokenSink:
    name: str = "broken"

    async def send(self, notice: Notice) -> None:
        raise AlertDeliveryError("the stand-in refused.")


def queue_stuck(metrics: Metrics, queued: int = 3) -> None:
    figures: dict[str, int | float | str] = {"in_queue": queued, "workers_idle": 0, "workers_running": 0}
    metrics.set_provider_health("runpod", ProviderHealth(False, "stuck", figures))


def queue_served(metrics: Metrics) -> None:
    figures: dict[str, int | float | str] = {"in_queue": 0, "workers_idle": 1, "workers_running": 0}
    metrics.set_provider_health("runpod", ProviderHealth(True, "fine", figures))


def engine_with(rule: object, *, repeat_s: float = 3600.0) -> tuple[AlertEngine, Metrics, RecordingSink, Clock]:
    clock = Clock()
    metrics = Metrics(clock=clock)
    sink = RecordingSink()
    engine = AlertEngine([rule], [sink], metrics, repeat_s=repeat_s, clock=clock)  # type: ignore[list-item]
    return engine, metrics, sink, clock


async def test_an_alert_fires_once_after_its_hold_time_and_resolves_once() -> None:
    engine, metrics, sink, clock = engine_with(NoWorkersWhileQueued(for_s=60))
    queue_stuck(metrics)
    await engine.evaluate()
    clock.now += 30
    await engine.evaluate()
    assert sink.notices == []  # still pending
    clock.now += 31
    await engine.evaluate()
    clock.now += 10
    queue_stuck(metrics, queued=5)
    await engine.evaluate()
    assert sink.notices == [("fired", "no_workers:runpod")]
    assert metrics.snapshot()["alerts"][0]["rule"] == "no_workers"
    queue_served(metrics)
    await engine.evaluate()
    await engine.evaluate()
    assert sink.notices == [("fired", "no_workers:runpod"), ("resolved", "no_workers:runpod")]
    assert metrics.snapshot()["alerts"] == []


async def test_a_condition_that_clears_while_pending_never_fires() -> None:
    engine, metrics, sink, clock = engine_with(NoWorkersWhileQueued(for_s=60))
    queue_stuck(metrics)
    await engine.evaluate()
    queue_served(metrics)
    clock.now += 120
    await engine.evaluate()
    queue_stuck(metrics)
    await engine.evaluate()
    assert sink.notices == [] and engine.pending


async def test_a_long_alert_repeats_at_the_repeat_interval_only() -> None:
    engine, metrics, sink, clock = engine_with(NoWorkersWhileQueued(for_s=0), repeat_s=600)
    queue_stuck(metrics)
    for _ in range(5):
        await engine.evaluate()
        clock.now += 100
    clock.now += 200
    await engine.evaluate()
    assert [kind for kind, _ in sink.notices] == ["fired", "repeat"]


async def test_a_failing_sink_does_not_stop_the_others() -> None:
    clock = Clock()
    metrics = Metrics(clock=clock)
    good = RecordingSink()
    engine = AlertEngine([NoWorkersWhileQueued(for_s=0)], [BrokenSink(), good], metrics, clock=clock)
    queue_stuck(metrics)
    await engine.evaluate()
    assert good.notices == [("fired", "no_workers:runpod")] and engine.delivery_failures == 1


async def test_endpoint_down_fires_only_when_health_cannot_reach_the_endpoint() -> None:
    engine, metrics, sink, _ = engine_with(EndpointDown(for_s=0))
    queue_stuck(metrics)  # answered /health, so not "down" (the no-workers rule covers it)
    await engine.evaluate()
    assert sink.notices == []
    metrics.set_provider_health("runpod", ProviderHealth(False, "runpod health check failed: cannot be reached"))
    await engine.evaluate()
    assert sink.notices == [("fired", "endpoint_down:runpod")]


async def test_no_workers_tolerates_a_queue_that_workers_are_serving() -> None:
    engine, metrics, sink, _ = engine_with(NoWorkersWhileQueued(for_s=0))
    figures: dict[str, int | float | str] = {"in_queue": 4, "workers_running": 2}
    metrics.set_provider_health("runpod", ProviderHealth(True, "busy", figures))
    await engine.evaluate()
    assert sink.notices == []


def answered(metrics: Metrics, clock: Clock, ttft: float, n: int) -> None:
    for _ in range(n):
        metrics.record(RequestRecord("runpod", "m", "jamie", "vapi", "ok", ttft, ttft + 0.5, 5, at=clock.now))


async def test_p95_ttft_over_budget_across_the_window_fires_and_recovers_as_the_window_moves() -> None:
    engine, metrics, sink, clock = engine_with(TtftOverBudget(budget_s=0.8, window_s=300, min_requests=5))
    answered(metrics, clock, 0.3, 4)
    answered(metrics, clock, 2.0, 1)  # one slow answer in five: p95 is the slow one
    await engine.evaluate()
    assert sink.notices == [("fired", "ttft_over_budget")]
    clock.now += 301
    answered(metrics, clock, 0.3, 5)
    await engine.evaluate()
    assert sink.notices[-1] == ("resolved", "ttft_over_budget")


async def test_ttft_rule_waits_for_enough_requests() -> None:
    engine, metrics, sink, clock = engine_with(TtftOverBudget(budget_s=0.8, window_s=300, min_requests=5))
    answered(metrics, clock, 3.0, 4)
    await engine.evaluate()
    assert sink.notices == []


async def test_error_rate_over_threshold_fires() -> None:
    engine, metrics, sink, clock = engine_with(ErrorRateHigh(threshold=0.2, window_s=300, min_requests=5))
    answered(metrics, clock, 0.3, 6)
    for _ in range(2):
        metrics.record(RequestRecord("runpod", "m", "jamie", "vapi", "provider_timeout", error="late", at=clock.now))
    await engine.evaluate()
    assert sink.notices == [("fired", "error_rate")]


async def test_a_failed_deploy_alerts_until_a_later_deploy_succeeds() -> None:
    engine, metrics, sink, clock = engine_with(DeployFailed())

    def deploys(*statuses: str) -> None:
        entries = [DeployEntry(at=clock.now, image=f"img:{i}", status=s) for i, s in enumerate(statuses)]
        metrics.set_store_view(active_conversations=0, conversations_total=0, switches=[], deploys=entries)

    deploys("failed", "done")
    await engine.evaluate()
    deploys("done", "failed", "done")
    await engine.evaluate()
    assert sink.notices == [("fired", "deploy_failed"), ("resolved", "deploy_failed")]


async def test_failover_alerts_from_router_events_and_ends_when_the_provider_answers_again() -> None:
    engine, _, sink, _ = engine_with(FailoverActive())
    started = Event("failover.started", {"alias": "jamie", "provider": "runpod", "to": "openrouter", "reason": "cold"})
    engine.observe(started)
    engine.observe(started)
    await engine.evaluate()
    engine.observe(Event("request.done", {"provider": "openrouter", "outcome": "ok"}))
    await engine.evaluate()
    engine.observe(Event("request.done", {"provider": "runpod", "outcome": "ok"}))
    await engine.evaluate()
    assert sink.notices == [("fired", "failover:jamie:runpod"), ("resolved", "failover:jamie:runpod")]


async def test_a_hedge_is_not_a_failover() -> None:
    engine, _, sink, _ = engine_with(FailoverActive())
    engine.observe(Event("failover.started", {"alias": "jamie", "provider": "runpod", "to": "local", "mode": "hedge"}))
    await engine.evaluate()
    assert sink.notices == []


async def test_failover_ended_event_resolves_it() -> None:
    engine, _, sink, _ = engine_with(FailoverActive())
    engine.observe(Event("failover.started", {"alias": "jamie", "provider": "runpod", "to": "openrouter"}))
    await engine.evaluate()
    engine.observe(Event("failover.ended", {"alias": "jamie", "provider": "runpod"}))
    await engine.evaluate()
    assert [kind for kind, _ in sink.notices] == ["fired", "resolved"]


def test_default_rules_take_their_knobs_from_settings() -> None:
    rules = default_rules(Settings(ttft_budget_s=0.5, alert_ttft_window_s=60, alert_queue_stall_s=7))
    ttft = next(r for r in rules if isinstance(r, TtftOverBudget))
    stall = next(r for r in rules if isinstance(r, NoWorkersWhileQueued))
    assert (ttft.budget_s, ttft.window_s, stall.for_s) == (0.5, 60, 7)
    assert {r.name for r in rules} == {
        "endpoint_down",
        "no_workers",
        "ttft_over_budget",
        "error_rate",
        "deploy_failed",
        "failover",
        "store_writes_waiting",
        "store_writes_lost",
    }
