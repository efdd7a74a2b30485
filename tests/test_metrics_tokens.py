"""Input tokens count next to output tokens: per model and in the totals of the live snapshot, through
the persisted minute rollups (a restart keeps them) and in the fleet view summed across replicas."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pete_mcp.core import Store
from pete_mcp.metrics import Metrics, RequestRecord, fleet_snapshot
from pete_mcp.metrics._aggregate import Aggregate
from pete_mcp.metrics._prometheus import prometheus_registry, render_prometheus
from pete_mcp.metrics._rollups import MinuteRollups

pytestmark = pytest.mark.anyio
NOW = 1_700_000_000.0


def ok(at: float, model: str, *, inputs: int, outputs: int) -> RequestRecord:
    return RequestRecord("p", model, "alias-" + model, "cli", "ok", 0.1, 1.0, outputs, at=at, input_tokens=inputs)


def failed(at: float) -> RequestRecord:
    return RequestRecord("p", "a", "alias-a", "cli", "provider_timeout", None, 0.0, 0, "late", at=at, input_tokens=99)


def test_the_snapshot_sums_input_tokens_per_model_and_in_the_totals() -> None:
    metrics = Metrics(clock=lambda: NOW)
    metrics.record(ok(NOW - 30, "a", inputs=120, outputs=10))
    metrics.record(ok(NOW - 20, "a", inputs=80, outputs=5))
    metrics.record(failed(NOW - 15))  # a failed request's prompt was never answered: not counted
    metrics.record(ok(NOW - 10, "b", inputs=7, outputs=3))
    snap = metrics.snapshot()
    per_model = {m["model"]: (m["input_tokens"], m["output_tokens"]) for m in snap["models"]}
    assert per_model == {"a": (200, 15), "b": (7, 3)}
    assert (snap["totals"]["input_tokens"], snap["totals"]["output_tokens"]) == (207, 18)
    assert snap["last_5m"]["input_tokens"] == 207
    assert (snap["last"]["input_tokens"], snap["last"]["output_tokens"]) == (7, 3)


def test_prometheus_counts_input_tokens_per_model() -> None:
    metrics = Metrics(clock=lambda: NOW)
    metrics.record(ok(NOW - 1, "a", inputs=42, outputs=4))
    metrics.snapshot()
    text = render_prometheus(prometheus_registry(metrics)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {s.labels["model"]: s.value for s in families["pete_input_tokens"].samples if s.name.endswith("_total")}
    assert samples == {"a": 42.0}


def test_a_rollup_row_keeps_input_tokens_and_an_older_row_reads_as_zero() -> None:
    agg = Aggregate()
    agg.add(ok(NOW, "a", inputs=31, outputs=2))
    row = agg.to_row()
    assert Aggregate.from_row(row).input_tokens == 31
    del row["input_tokens"]  # a minute flushed before input tokens were kept
    assert Aggregate.from_row(row).input_tokens == 0


async def test_the_fleet_view_sums_input_tokens_across_replicas(tmp_path: Path) -> None:
    store = Store(tmp_path / "pete.db")
    store.open()
    try:
        for replica, inputs in (("r0", 50), ("r1", 25)):
            rollups = MinuteRollups()
            rollups.add(ok(NOW - 90, "a", inputs=inputs, outputs=1))
            rollups.add(ok(NOW - 30, "a", inputs=inputs, outputs=1))
            await rollups.flush(store, [], keep_after=NOW - 86_400, replica=replica)
        fleet = await fleet_snapshot(store, now=NOW)
    finally:
        store.close()
    assert fleet["totals"]["input_tokens"] == 150
    assert {r["replica"]: r["input_tokens"] for r in fleet["replicas"]} == {"r0": 100, "r1": 50}
    assert [m["input_tokens"] for m in fleet["models"]] == [150]
