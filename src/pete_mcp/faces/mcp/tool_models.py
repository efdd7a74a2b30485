"""The results Pete's MCP tools return: pydantic models, so every tool has an output schema.

Why a module of its own: the MCP server (the only module that imports `mcp`) turns these
into `structuredContent`; the doctor and the benchmarks read the same shapes. They live at
module level because the SDK resolves tool signatures by name.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "CheckView",
    "DeployHistoryEntry",
    "DeployView",
    "EndpointStatusView",
    "HealthView",
    "JobView",
    "ModelInfo",
    "ModelList",
    "PurgeView",
    "RolloutView",
    "SwitchView",
    "UsageView",
]

Figure = float | int | str | bool | None


class UsageView(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class JobView(BaseModel):
    """One generation: finished (`completed`), still going, or ended without a reply."""

    job_id: str = Field(description="Pete's job id: pass it to get_job or cancel_job.")
    status: Literal["waiting", "generating", "completed", "failed", "cancelled"]
    text: str = Field(default="", description="The reply; while generating, the text so far.")
    model: str = Field(description="Model alias that serves the job.")
    provider_model: str | None = None
    provider: str | None = None
    finish_reason: str | None = None
    usage: UsageView | None = None
    ttft_s: float | None = Field(default=None, description="Time to the first token, seconds.")
    total_s: float | None = Field(default=None, description="Whole generation, seconds.")
    elapsed_s: float = Field(description="Seconds since the job started.")
    conversation_id: str | None = None
    runpod_job_id: str | None = Field(default=None, description="The RunPod job id, when the job runs on RunPod.")
    error: str | None = None
    hint: str | None = Field(default=None, description="What to do next, when the job is not finished.")


class ModelInfo(BaseModel):
    alias: str
    provider: str
    provider_model: str
    fallbacks: list[str] = Field(default_factory=list)
    context_window: int
    description: str = ""
    active: bool
    warm: bool | None = Field(default=None, description="Whether it answers without a cold start; None when unknown.")
    recent_requests: int = 0
    recent_ttft_p50_s: float | None = None
    recent_latency_p50_s: float | None = None
    servable: bool | None = Field(default=None, description="Whether a configured, healthy provider can serve it now.")
    served_by: str | None = Field(default=None, description="The provider that would serve it now.")
    where: str | None = Field(default=None, description="'runpod' (a GPU elsewhere) or 'this machine'.")
    unservable_reason: str = Field(default="", description="Why it cannot be served now, when it cannot.")


class ModelList(BaseModel):
    active: str
    models: list[ModelInfo]


class SwitchView(BaseModel):
    previous: str
    active: str
    warmup_s: float | None = Field(default=None, description="Seconds the warm-up took; None when not warmed.")


class CheckView(BaseModel):
    name: str
    status: Literal["ok", "warn", "fail", "skip"]
    detail: str
    hint: str | None = Field(default=None, description="How to fix it, when it is not ok.")


class HealthView(BaseModel):
    status: Literal["ok", "degraded", "failing"]
    summary: str
    checks: list[CheckView]
    figures: dict[str, Figure] = Field(default_factory=dict, description="Key live figures.")


class RolloutView(BaseModel):
    endpoint_version: int | None = None
    in_progress: bool
    workers_on_latest: int = 0
    workers_total: int = 0
    percent_on_latest: float = 0.0
    stale_workers: int = 0
    workers: dict[str, int] = Field(default_factory=dict)


class DeployHistoryEntry(BaseModel):
    id: int
    at: float
    kind: str
    image: str
    previous_image: str | None = None
    status: str
    detail: str = ""


class DeployView(BaseModel):
    started: bool
    status: str = Field(description="rolling_out, done, failed, rolled_back, or why nothing started.")
    image: str | None = None
    previous_image: str | None = None
    deploy_id: int | None = None
    rollout: RolloutView | None = None
    hint: str | None = None


class EndpointStatusView(BaseModel):
    configured: bool
    endpoint: str | None = Field(default=None, description="Endpoint id (never the key).")
    reachable: bool = False
    detail: str = ""
    workers: dict[str, int] = Field(default_factory=dict)
    jobs: dict[str, int] = Field(default_factory=dict)
    image: str | None = None
    rollout: RolloutView | None = None
    recent_deploys: list[DeployHistoryEntry] = Field(default_factory=list)
    hint: str | None = None


class PurgeView(BaseModel):
    purged: bool
    removed: int = 0
    status: str = ""
