"""Metrics: histograms, the snapshot, windows, RunPod figures and the Prometheus exposition."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pete_mcp.core.provider import ProviderHealth
from pete_mcp.metrics import Metrics, RequestRecord
from pete_mcp.metrics._histogram import GENAI_DURATION_BUCKETS, GENAI_TTFT_BUCKETS, Histogram
from pete_mcp.metrics._prometheus import prometheus_registry, render_prometheus


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ok(at: float, *, ttft: float = 0.2, total: float = 1.0, tokens: int = 10, model: str = "m", provider: str = "p"):
    return RequestRecord(provider, model, "alias-" + model, "api", "ok", ttft, total, tokens, at=at)


def failed(at: float, code: str = "provider_timeout", message: str = "p did not answer in time."):
    return RequestRecord("p", "m", "alias-m", "vapi", code, None, 0.0, 0, message, at=at)


def test_genai_bucket_boundaries_match_the_conventions() -> None:
    assert GENAI_DURATION_BUCKETS[0] == 0.01 and GENAI_DURATION_BUCKETS[-1] == 81.92
    assert len(GENAI_DURATION_BUCKETS) == 14
    assert GENAI_TTFT_BUCKETS[:3] == (0.001, 0.005, 0.01) and GENAI_TTFT_BUCKETS[-1] == 10.0


def test_a_value_on_a_bound_lands_in_that_bucket_like_prometheus_le() -> None:
    hist = Histogram((0.1, 0.5, 1.0))
    for value in (0.1, 0.5, 0.7, 3.0):
        hist.observe(value)
    assert hist.counts == [1, 1, 1, 1]
    assert hist.cumulative() == [("0.1", 1), ("0.5", 2), ("1.0", 3), ("+Inf", 4)]


def test_histogram_quantiles_interpolate_inside_the_bucket() -> None:
    hist = Histogram((1.0, 2.0))
    for value in (1.5, 1.5, 1.5, 1.5):
        hist.observe(value)
    assert hist.quantile(0.5) == pytest.approx(1.5)
    assert Histogram((1.0,)).quantile(0.5) is None


def test_recording_only_queues_the_record_until_someone_reads() -> None:
    metrics = Metrics()
    metrics.record(ok(metrics.clock()))
    assert metrics.totals == {}  # nothing computed on the hot path
    assert metrics.snapshot()["totals"]["requests"] == 1


def test_snapshot_reports_per_model_figures_errors_and_success_rate() -> None:
    clock = Clock()
    metrics = Metrics(clock=clock)
    for i in range(3):
        metrics.record(ok(clock.now - 10 + i, ttft=0.3, total=1.3, tokens=20))
    metrics.record(ok(clock.now, model="other", provider="q"))
    metrics.record(failed(clock.now, message="runpod did not answer in time."))
    snap = metrics.snapshot()
    assert snap["totals"]["requests"] == 5 and snap["totals"]["errors"] == 1
    assert snap["totals"]["success_rate"] == pytest.approx(0.8)
    assert snap["requests"] == 5 and snap["errors"] == snap["errors_24h"] == 1
    by_model = {(m["provider"], m["model"]): m for m in snap["models"]}
    assert by_model[("p", "m")]["requests"] == 4
    assert by_model[("p", "m")]["errors_by_kind"] == {"provider_timeout": 1}
    assert by_model[("p", "m")]["tokens_per_s"] == pytest.approx(20.0)  # 20 tokens over 1.0 s after TTFT
    assert 0.25 <= by_model[("p", "m")]["ttft"]["p50"] <= 0.5
    assert snap["recent_errors"][0]["message"] == "runpod did not answer in time."
    assert snap["recent_errors"][0]["kind"] == "provider_timeout" and snap["recent_errors"][0]["source"] == "vapi"
    assert snap["last"]["outcome"] == "provider_timeout"
    assert sum(point["requests"] for point in snap["series"]) == 5
    assert len(snap["series"]) == 60
    json.dumps(snap)


def test_the_last_5_minutes_use_exact_percentiles() -> None:
    clock = Clock()
    metrics = Metrics(clock=clock)
    for ttft in (0.11, 0.12, 0.13, 0.14, 0.95):
        metrics.record(ok(clock.now - 1, ttft=ttft, total=ttft + 1))
    ttft = metrics.snapshot()["last_5m"]["ttft"]
    assert (ttft["count"], ttft["p50"], ttft["p95"]) == (5, 0.13, 0.95)


def test_the_snapshot_is_the_same_object_until_something_changes() -> None:
    metrics = Metrics()
    first = metrics.snapshot()
    assert metrics.snapshot() is first
    metrics.active_jobs += 1
    second = metrics.snapshot()
    assert second is not first and second["active_jobs"] == 1


def test_errors_older_than_a_day_leave_the_24h_view() -> None:
    clock = Clock()
    metrics = Metrics(clock=clock)
    metrics.record(failed(clock.now - 90_000))
    metrics.record(failed(clock.now - 10))
    snap = metrics.snapshot()
    assert snap["errors_24h"] == 1 and len(snap["recent_errors"]) == 1


def test_window_gives_exact_p95_and_error_rate_over_recent_requests() -> None:
    clock = Clock()
    metrics = Metrics(clock=clock)
    metrics.record(ok(clock.now - 500, ttft=99.0))  # outside the window
    for i in range(20):
        metrics.record(ok(clock.now - 1, ttft=0.1 * (i + 1)))
    metrics.record(failed(clock.now - 1))
    stats = metrics.window(300)
    assert stats.requests == 21 and stats.errors == 1
    assert stats.ttft_p95 == pytest.approx(1.9)
    assert stats.error_rate == pytest.approx(1 / 21)


@pytest.mark.parametrize(
    "figures",
    [
        {"in_queue": 3, "in_progress": 1, "workers_idle": 0, "workers_running": 0, "workers_initializing": 1},
        {"inQueue": 3, "inProgress": 1, "idle": 0, "running": 0, "initializing": 1},
    ],
)
def test_runpod_queue_and_workers_are_read_from_provider_health(figures: dict[str, int | float | str]) -> None:
    metrics = Metrics()
    metrics.set_provider_health("runpod", ProviderHealth(False, "stuck", figures))
    pod = metrics.snapshot()["runpod"]
    assert pod["in_queue"] == 3 and pod["in_progress"] == 1
    assert pod["workers"]["initializing"] == 1 and pod["serving_workers"] == 0
    assert pod["reachable"] is True and pod["live"] is False


def test_a_provider_without_queue_figures_is_not_taken_for_the_endpoint() -> None:
    metrics = Metrics()
    metrics.set_provider_health("openrouter", ProviderHealth(True, "fine"))
    snap = metrics.snapshot()
    assert snap["runpod"] is None
    assert snap["providers"][0]["name"] == "openrouter" and snap["providers"][0]["ok"] is True


def test_live_calls_follow_call_started_and_ended() -> None:
    metrics = Metrics()
    metrics.call_started("call-1")
    metrics.call_started("call-2")
    metrics.call_ended("call-1")
    metrics.call_ended("never-started")
    assert metrics.snapshot()["live_calls"] == 1


def test_prometheus_exposition_parses_and_carries_the_genai_buckets() -> None:
    clock = Clock()
    metrics = Metrics(clock=clock)
    metrics.record(ok(clock.now, ttft=0.07, total=0.5))
    metrics.record(failed(clock.now))
    metrics.count_fallback("runpod", "openrouter")
    metrics.set_provider_health("runpod", ProviderHealth(True, "ok", {"in_queue": 2, "workers_idle": 1}))
    metrics.set_active_model("jamie")
    text = render_prometheus(prometheus_registry(metrics)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = {
        (s.labels["provider"], s.labels["model"], s.labels["outcome"]): s.value
        for s in families["pete_requests"].samples
    }
    assert requests == {("p", "m", "ok"): 1.0, ("p", "m", "provider_timeout"): 1.0}
    upstream = {
        (s.labels["provider"], s.labels["outcome"]): s.value for s in families["pete_upstream_requests"].samples
    }
    assert upstream[("runpod", "failover")] == 1.0
    ttft = families["pete_ttft_seconds"]
    assert ttft.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in ttft.samples if s.name.endswith("_bucket")}
    assert buckets["0.06"] == 0.0 and buckets["0.08"] == 1.0 and buckets["+Inf"] == 1.0
    assert len(buckets) == len(GENAI_TTFT_BUCKETS) + 1
    duration = families["pete_request_duration_seconds"]
    assert {s.labels["le"] for s in duration.samples if s.name.endswith("_bucket")} >= {"0.01", "81.92", "+Inf"}
    assert families["pete_runpod_queue_jobs"].samples[0].value == 2.0
    assert families["pete_active_model_info"].samples[0].labels == {"alias": "jamie"}
    assert "pete_active_jobs" in families and "pete_live_calls" in families


def test_two_registries_never_collide() -> None:
    metrics = Metrics()
    first, second = prometheus_registry(metrics), prometheus_registry(metrics)
    assert render_prometheus(first) == render_prometheus(second)
