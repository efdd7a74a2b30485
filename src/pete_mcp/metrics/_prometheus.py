"""Prometheus exposition of `Metrics`, through prometheus_client with its own registry.

A custom collector reads the since-start totals and the current gauges at scrape time, so
recording never touches prometheus_client. Names follow Prometheus naming (one `pete_`
prefix, base units, `_total` on counters) and the OpenTelemetry GenAI bucket boundaries;
labels stay low-cardinality (provider, model, outcome — never call or conversation ids).
The process-wide default registry is never used, so several apps (tests) never collide.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from ._recorder import Metrics

__all__ = [
    "CONTENT_TYPE_LATEST",
    "MetricsCollector",
    "genai_families",
    "prometheus_name",
    "prometheus_registry",
    "render_prometheus",
]


class MetricsCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # names are dynamic; skip the registry's collision check instead of collecting at register

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        m.fold()
        requests = CounterMetricFamily(
            "pete_requests_total",
            "Requests answered, by provider, model and outcome.",
            labels=["provider", "model", "outcome"],
        )
        upstream = Counter[tuple[str, str]]()
        ttft = HistogramMetricFamily(
            "pete_ttft_seconds", "Time to first token of successful requests.", labels=["provider", "model"]
        )
        duration = HistogramMetricFamily(
            "pete_request_duration_seconds", "Total duration of successful requests.", labels=["provider", "model"]
        )
        tokens = CounterMetricFamily(
            "pete_output_tokens_total", "Output tokens generated.", labels=["provider", "model"]
        )
        prompt_tokens = CounterMetricFamily(
            "pete_input_tokens_total", "Input (prompt) tokens of successful requests.", labels=["provider", "model"]
        )
        for (provider, model), agg in sorted(m.totals.items()):
            ok = agg.requests - agg.errors
            requests.add_metric([provider, model, "ok"], ok)
            upstream[(provider, "ok")] += ok
            for kind, n in sorted(agg.errors_by_kind.items()):
                requests.add_metric([provider, model, kind], n)
                upstream[(provider, kind)] += n
            ttft.add_metric([provider, model], agg.ttft.cumulative(), agg.ttft.sum)
            duration.add_metric([provider, model], agg.duration.cumulative(), agg.duration.sum)
            tokens.add_metric([provider, model], agg.output_tokens)
            prompt_tokens.add_metric([provider, model], agg.input_tokens)
        fallbacks = CounterMetricFamily(
            "pete_fallbacks_total", "Failovers to the next provider before a first token.", labels=["from", "to"]
        )
        for (src, dst), n in sorted(m.fallbacks.items()):
            fallbacks.add_metric([src, dst], n)
            upstream[(src, "failover")] += n
        upstream_family = CounterMetricFamily(
            "pete_upstream_requests_total",
            "Provider attempts by outcome (a failover counts the failed attempt).",
            labels=["provider", "outcome"],
        )
        for (provider, outcome), n in sorted(upstream.items()):
            upstream_family.add_metric([provider, outcome], n)
        yield from (requests, upstream_family, ttft, duration, tokens, prompt_tokens, fallbacks)
        yield from self._gauges()
        if m.telemetry is not None:
            yield from genai_families(m.telemetry.collect())

    def _gauges(self) -> Iterator[Metric]:
        m = self.metrics
        yield GaugeMetricFamily("pete_active_jobs", "Requests being answered now.", value=m.active_jobs)
        yield GaugeMetricFamily("pete_live_calls", "VAPI calls in progress.", value=len(m.live_calls))
        yield GaugeMetricFamily(
            "pete_active_conversations", "Conversations active in the last 15 minutes.", value=m.active_conversations
        )
        up = GaugeMetricFamily(
            "pete_provider_up", "1 when the provider's last health check passed.", labels=["provider"]
        )
        for status in sorted(m.providers.values(), key=lambda s: s.name):
            up.add_metric([status.name], 1 if status.ok else 0)
        yield up
        queue = GaugeMetricFamily("pete_runpod_queue_jobs", "Jobs waiting in the RunPod queue.", labels=["provider"])
        running = GaugeMetricFamily("pete_runpod_in_progress_jobs", "Jobs running on RunPod.", labels=["provider"])
        workers = GaugeMetricFamily("pete_runpod_workers", "RunPod workers by state.", labels=["provider", "state"])
        if m.runpod is not None:
            queue.add_metric([m.runpod.provider], m.runpod.in_queue)
            running.add_metric([m.runpod.provider], m.runpod.in_progress)
            for state, n in sorted(m.runpod.workers.items()):
                workers.add_metric([m.runpod.provider, state], n)
        yield from (queue, running, workers)
        alerts = GaugeMetricFamily("pete_alerts_firing", "Alerts firing now, by rule.", labels=["rule"])
        for rule, n in sorted(Counter(a.rule for a in m.alerts).items()):
            alerts.add_metric([rule], n)
        yield alerts
        if m.active_model:
            yield _info(m.active_model)


_UNIT_SUFFIX = {"s": "_seconds", "By": "_bytes"}


def prometheus_name(name: str, unit: str | None) -> str:
    """An OpenTelemetry metric name in its Prometheus spelling (`gen_ai.server.time_to_first_token`, `s` →
    `gen_ai_server_time_to_first_token_seconds`; `{token}` annotations add no suffix), as the
    OpenTelemetry Prometheus exporter and collector write it."""
    base = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    suffix = _UNIT_SUFFIX.get(unit or "", "")
    return base if not suffix or base.endswith(suffix) else base + suffix


def _label_value(value: object) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)


def genai_families(data: Any) -> Iterator[Metric]:
    """The OpenTelemetry SDK's histograms (cumulative) as Prometheus histogram families."""
    if data is None:
        return
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                points: list[Any] = list(getattr(metric.data, "data_points", ()))
                if not points or not hasattr(points[0], "bucket_counts"):
                    continue
                keys = sorted({k for p in points for k in p.attributes})
                family = HistogramMetricFamily(
                    prometheus_name(metric.name, metric.unit),
                    metric.description or metric.name,
                    labels=[re.sub(r"[^a-zA-Z0-9_]", "_", k) for k in keys],
                )
                for point in points:
                    running, buckets = 0, []
                    for bound, n in zip(point.explicit_bounds, point.bucket_counts, strict=False):
                        running += n
                        buckets.append((floatToGoString(bound), running))
                    buckets.append(("+Inf", point.count))
                    labels = [_label_value(point.attributes.get(k, "")) for k in keys]
                    family.add_metric(labels, buckets, point.sum)
                yield family


def _info(alias: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily("pete_active_model_info", "The active model alias (value 1).", labels=["alias"])
    family.add_metric([alias], 1)
    return family


def prometheus_registry(metrics: Metrics) -> CollectorRegistry:
    """A fresh registry holding only Pete's collector (never the process-wide default)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(metrics))
    return registry


def render_prometheus(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
