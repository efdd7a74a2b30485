"""The one metrics snapshot: what `/api/metrics`, `pete://metrics/live` and the dashboard show.

A wire format, so pydantic; `Metrics.snapshot()` returns `MetricsSnapshot(...).model_dump(mode="json")`.
Times are Unix seconds; latencies are seconds; rates are shares between 0 and 1.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = [
    "AlertEntry",
    "DeployEntry",
    "ErrorEntry",
    "FleetSnapshot",
    "LastRequest",
    "LatencySummary",
    "MetricsSnapshot",
    "MinutePoint",
    "ModelFigures",
    "ProviderStatus",
    "ReplicaFigures",
    "RunPodFigures",
    "StorageFigures",
    "SwitchEntry",
    "Totals",
]


class LatencySummary(BaseModel):
    count: int = 0
    p50: float | None = None
    p95: float | None = None
    mean: float | None = None


class Totals(BaseModel):
    requests: int = 0
    ok: int = 0
    errors: int = 0
    success_rate: float | None = Field(default=None, description="ok / requests; None before the first request.")
    errors_by_kind: dict[str, int] = Field(default_factory=dict)
    input_tokens: int = Field(default=0, description="Prompt tokens of the successful requests.")
    output_tokens: int = Field(default=0, description="Output tokens of the successful requests that generated any.")
    tokens_per_s: float | None = Field(default=None, description="Output tokens per second of generation after TTFT.")
    ttft: LatencySummary = Field(default_factory=LatencySummary)
    duration: LatencySummary = Field(default_factory=LatencySummary)


class ModelFigures(Totals):
    provider: str
    model: str
    alias: str


class MinutePoint(BaseModel):
    at: float = Field(description="Start of the minute.")
    requests: int = 0
    errors: int = 0
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    duration_p50: float | None = None
    duration_p95: float | None = None


class ErrorEntry(BaseModel):
    at: float
    provider: str
    model: str
    alias: str
    source: str
    kind: str
    message: str


class LastRequest(BaseModel):
    at: float
    provider: str
    model: str
    alias: str
    source: str
    outcome: str
    ttft_s: float | None = None
    total_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


class ProviderStatus(BaseModel):
    name: str
    ok: bool
    detail: str
    checked_at: float


class RunPodFigures(BaseModel):
    """The RunPod endpoint as its `/health` (which submits no job) last described it."""

    provider: str
    live: bool = Field(description="The last health check passed.")
    reachable: bool = Field(description="The endpoint answered /health with job and worker counts.")
    detail: str
    checked_at: float
    in_queue: int = 0
    in_progress: int = 0
    workers: dict[str, int] = Field(default_factory=dict)
    serving_workers: int = Field(default=0, description="Workers able to take a job now: max(idle + running, ready).")


class SwitchEntry(BaseModel):
    at: float
    from_model: str | None = None
    to_model: str
    warmup_s: float | None = None
    by: str
    ok: bool


class DeployEntry(BaseModel):
    at: float
    image: str
    previous_image: str | None = None
    status: str
    detail: str = ""
    kind: str = "deploy"


class AlertEntry(BaseModel):
    key: str
    rule: str
    severity: str
    title: str
    detail: str
    since: float


class StorageFigures(BaseModel):
    engine: str = Field(description="sqlite or postgres.")
    replica: str = Field(description="This replica's name (REPLICA_ID, or hostname:port).")
    pending_writes: int = Field(default=0, description="Writes waiting for the database to come back.")
    deferred_writes: int = Field(default=0, description="Writes that ever had to wait (since start).")
    replayed_writes: int = Field(default=0, description="Waiting writes written once the database was back.")
    lost_writes: int = Field(default=0, description="Writes dropped: spool full, or refused on replay.")
    last_loss_at: float | None = None


class ReplicaFigures(Totals):
    replica: str
    last_minute: float = Field(description="Start of the newest minute this replica flushed.")


class FleetSnapshot(BaseModel):
    """Every replica's flushed rollups summed (`/api/metrics?scope=fleet`, `pete://metrics/fleet`).

    Built from the database, so it trails live figures by up to METRICS_FLUSH_INTERVAL_S.
    """

    scope: str = "fleet"
    generated_at: float
    window_s: float
    replicas: list[ReplicaFigures] = Field(default_factory=list)
    totals: Totals = Field(default_factory=Totals)
    models: list[ModelFigures] = Field(default_factory=list)
    series: list[MinutePoint] = Field(default_factory=list, description="The last 60 minutes, oldest first.")


class MetricsSnapshot(BaseModel):
    generated_at: float
    started_at: float
    window_s: float = Field(description="Span of `totals`, `models` and `errors` (24 h).")
    active_model: str = ""
    active_jobs: int = 0
    live_calls: int = Field(default=0, description="VAPI calls between call.started and call.ended.")
    active_conversations: int = Field(default=0, description="Conversations with a message in the last 15 minutes.")
    conversations_total: int = 0
    fallbacks: int = Field(default=0, description="Failovers to a next provider since start.")
    totals: Totals = Field(default_factory=Totals)
    last_5m: Totals = Field(
        default_factory=Totals, description="The last 5 minutes; percentiles exact (from raw records)."
    )
    models: list[ModelFigures] = Field(default_factory=list)
    series: list[MinutePoint] = Field(default_factory=list, description="The last 60 minutes, oldest first.")
    requests: int = Field(default=0, description="Requests in the window (= totals.requests).")
    errors: int = Field(default=0, description="Failed requests in the window (= totals.errors).")
    errors_24h: int = 0
    recent_errors: list[ErrorEntry] = Field(default_factory=list, description="Most recent first (at most 50).")
    last: LastRequest | None = Field(default=None, description="The most recent request.")
    runpod: RunPodFigures | None = None
    providers: list[ProviderStatus] = Field(default_factory=list)
    switches: list[SwitchEntry] = Field(default_factory=list)
    deploys: list[DeployEntry] = Field(default_factory=list)
    alerts: list[AlertEntry] = Field(default_factory=list)
    storage: StorageFigures | None = Field(default=None, description="This replica's database and write spool.")
