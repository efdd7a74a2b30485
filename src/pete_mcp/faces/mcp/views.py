"""Build the operator's views (tool results) from core state: jobs, models, health, the endpoint.

Why apart from the MCP server: these are plain reads of the core that `pete doctor`, the
benchmarks and tests share, and keeping them MCP-free keeps `server.py` a thin translation
of MCP calls to core calls.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from pete_mcp.core import PeteError
from pete_mcp.gateway import Core
from pete_mcp.ops import (
    RUNPOD_NOT_CONFIGURED_HINT,
    Deployer,
    DeployRecord,
    HealthReport,
    RolloutState,
    WorkerSource,
    diagnose,
    read_report,
    runpod_client,
    servable_models,
)
from pete_mcp.runpod import EndpointHealth, RunPodClient

from .jobs import TrackedJob
from .tool_models import (
    CheckView,
    DeployHistoryEntry,
    EndpointStatusView,
    HealthView,
    JobView,
    ModelInfo,
    ModelList,
    RolloutView,
    UsageView,
)

__all__ = [
    "deploy_entry",
    "endpoint_status",
    "health_view",
    "job_view",
    "model_list",
    "rollout_view",
    "waiting_hint",
]

WARM_WINDOW_S = 300.0  # a model that answered this recently is taken as warm


def job_view(job: TrackedJob, *, hint: str | None = None) -> JobView:
    reply = job.reply
    completion = reply.completion if reply is not None else None
    return JobView(
        job_id=job.id,
        status=job.status,
        text=job.text,
        model=job.alias,
        provider_model=reply.model if reply else None,
        provider=reply.provider if reply else None,
        finish_reason=reply.finish_reason if reply else None,
        usage=UsageView(
            prompt_tokens=completion.usage.prompt_tokens, completion_tokens=completion.usage.completion_tokens
        )
        if completion
        else None,
        ttft_s=completion.ttft_s if completion else None,
        total_s=completion.total_s if completion else None,
        elapsed_s=round(job.elapsed_s, 3),
        conversation_id=job.turn.conversation_id,
        runpod_job_id=job.runpod_job_id,
        error=str(job.error) if job.error else None,
        hint=hint,
    )


async def waiting_hint(core: Core, job: TrackedJob, workers: WorkerSource | None = None) -> str:
    """Say why a job is not done yet and what to do: wait out a cold start, raise max workers when
    capacity is short, or read the logs and roll back when workers crash-loop (`ops.diagnose`)."""
    again = f"Call get_job with job_id={job.id!r} (wait_s up to 40) to collect the reply, or cancel_job to stop it."
    if job.status == "generating":
        return f"Still generating ({len(job.parts)} tokens so far). {again}"
    client = runpod_client(core)
    if client is None and workers is None:
        return f"No token yet: the model is loading or busy. {again}"
    health: EndpointHealth | None = None
    if client is not None:
        with anyio.move_on_after(2):
            try:
                health = await client.health()
            except PeteError:
                health = None
    report = await read_report(workers, timeout_s=2)
    found = diagnose(report, health)
    if found.kind in ("unknown", "ok"):
        return f"No token yet: the model is loading or busy. {again}"
    logs = f" (worker_logs worker_id={found.worker_id!r})" if found.worker_id else ""
    return f"No token yet: {found.summary} {found.advice}{logs} {again}"


def model_list(core: Core) -> ModelList:
    """Every registered model, with recent latency from the metrics snapshot where it has some."""
    figures = _per_alias_figures(core.metrics.snapshot())
    serving = servable_models(core)
    now = time.time()
    models: list[ModelInfo] = []
    for spec in core.models:
        card = spec.card()
        can = serving[spec.alias]
        stats = figures.get(spec.alias, {})
        last_ok = stats.get("last_ok_at")
        models.append(
            ModelInfo(
                alias=spec.alias,
                provider=card["provider"],
                provider_model=card["provider_model"],
                fallbacks=card["fallbacks"],
                context_window=spec.context_window,
                description=spec.description,
                active=spec.alias == core.active_alias,
                warm=True if isinstance(last_ok, float) and now - last_ok < WARM_WINDOW_S else None,
                recent_requests=int(stats.get("requests") or 0),
                recent_ttft_p50_s=stats.get("ttft_p50"),
                recent_latency_p50_s=stats.get("duration_p50"),
                servable=can["servable"],
                served_by=can["provider"],
                where=can["where"],
                unservable_reason=can["reason"],
            )
        )
    return ModelList(active=core.active_alias, models=models)


def _per_alias_figures(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-alias request count and p50s from the snapshot (the grown shape has `models`; else `last`)."""
    out: dict[str, dict[str, Any]] = {}
    for row in snapshot.get("models") or []:
        if not isinstance(row, dict) or "alias" not in row:
            continue
        entry = out.setdefault(row["alias"], {"requests": 0})
        entry["requests"] += int(row.get("requests") or 0)
        entry["ttft_p50"] = (row.get("ttft") or {}).get("p50")
        entry["duration_p50"] = (row.get("duration") or {}).get("p50")
    last = snapshot.get("last")
    if isinstance(last, dict) and last.get("outcome") == "ok" and last.get("alias"):
        out.setdefault(last["alias"], {"requests": 0})["last_ok_at"] = float(last.get("at") or 0.0)
    return out


def health_view(report: HealthReport) -> HealthView:
    return HealthView(
        status=report.status,
        summary=report.summary,
        checks=[CheckView(name=c.name, status=c.status, detail=c.detail, hint=c.hint) for c in report.checks],
        figures=report.figures,
    )


def rollout_view(state: RolloutState) -> RolloutView:
    return RolloutView(
        endpoint_version=state.endpoint_version,
        in_progress=not state.finished,
        workers_on_latest=state.workers_on_latest,
        workers_total=state.workers_total,
        percent_on_latest=state.percent_on_latest,
        stale_workers=state.stale_workers,
        workers=state.workers,
    )


def deploy_entry(record: DeployRecord) -> DeployHistoryEntry:
    return DeployHistoryEntry(
        id=record.id,
        at=record.at,
        kind=record.kind,
        image=record.image,
        previous_image=record.previous_image,
        status=record.status,
        detail=record.detail,
    )


async def endpoint_status(core: Core, deployer: Deployer | None) -> EndpointStatusView:
    """The endpoint's workers and jobs (`/health`), and with REST credentials its image and rollout."""
    client: RunPodClient | None = runpod_client(core)
    if client is None:
        return EndpointStatusView(configured=False, detail="RunPod not configured.", hint=RUNPOD_NOT_CONFIGURED_HINT)
    view = EndpointStatusView(configured=True, endpoint=client.endpoint_id)
    try:
        health = await client.health()
    except PeteError as exc:
        view.detail, view.hint = str(exc), "Check the endpoint id and key; `pete doctor` runs every check."
    else:
        view.reachable = True
        view.workers = health.workers.model_dump()
        view.jobs = health.jobs.model_dump()
        view.detail = f"{health.workers.serving} serving worker(s), {health.jobs.in_queue} job(s) queued"
    if deployer is not None:
        try:
            view.image = (await deployer.rest.get_endpoint()).get("image")
            state = await deployer.rollout()
            await deployer.settle(state)  # a rollout that outlived its deploy call ends here
            view.rollout = rollout_view(state)
            view.recent_deploys = [deploy_entry(r) for r in await deployer.history(5)]
        except PeteError as exc:
            view.hint = f"Deploy details unavailable: {exc}"
    return view
