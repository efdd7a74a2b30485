"""System checks, each with a status and a fix hint: what the MCP `health` tool and `pete doctor` show.

Why one module: an operator asking Claude "is Pete healthy?" and one typing `pete doctor`
must see the same verdicts. Checks run concurrently, each under its own deadline, so one
hung dependency cannot stall the report. By default they cost nothing: RunPod's `/health`
and each provider's own state (model lists, `/api/ps`), never a job. The one-token probe
(`probe=True`, `pete doctor --probe`) is the only check that sends a prompt: on RunPod that is
a billed job that may cold-start a scaled-to-zero GPU, and it may hedge to a paid fallback.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import AuthError, PeteError, TextDelta
from pete_mcp.gateway import Core
from pete_mcp.runpod import EndpointHealth

from .runpod_ops import RUNPOD_NOT_CONFIGURED_HINT, RUNPOD_PROVIDER, runpod_client

__all__ = ["PROBE_COST", "Check", "CheckStatus", "HealthReport", "key_figures", "run_checks"]

CheckStatus = Literal["ok", "warn", "fail", "skip"]
Figure = float | int | str | bool | None

CHECK_TIMEOUT_S = 10.0
AUTH_HINT = "Check RUNPOD_API_KEY (RunPod console → Settings → API Keys); for the local endpoint, LOCAL_API_KEY."


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class HealthReport:
    checks: list[Check]
    figures: dict[str, Figure] = field(default_factory=dict)

    @property
    def status(self) -> Literal["ok", "degraded", "failing"]:
        states = {c.status for c in self.checks}
        return "failing" if "fail" in states else "degraded" if "warn" in states else "ok"

    @property
    def summary(self) -> str:
        passed = sum(c.status == "ok" for c in self.checks)
        counted = sum(c.status != "skip" for c in self.checks)
        bad = [c.name for c in self.checks if c.status in ("warn", "fail")]
        return f"{passed}/{counted} checks ok" + (f"; look at: {', '.join(bad)}" if bad else "")


PROBE_COST = (
    "sends a one-token prompt to the active model: on RunPod a billed job that may cold-start a "
    "scaled-to-zero GPU (billed from start until its idle timeout), and it may be hedged to a paid fallback"
)


async def run_checks(core: Core, *, probe: bool = False, probe_budget_s: float = 20.0) -> HealthReport:
    """Run every check concurrently and gather the key live figures (no job unless `probe`)."""
    endpoint: dict[str, EndpointHealth | PeteError | None] = {}
    jobs: list[tuple[str, Callable[[], Awaitable[list[Check]]], float]] = [
        ("runpod_endpoint", lambda: _runpod_endpoint(core), CHECK_TIMEOUT_S),
        ("runpod_workers", lambda: _runpod_workers(core, endpoint), CHECK_TIMEOUT_S),
        ("active_model", lambda: _active_model(core, probe, probe_budget_s), probe_budget_s + 1),
        ("fallback_providers", lambda: _fallbacks(core), CHECK_TIMEOUT_S),
        ("storage", lambda: _storage(core), CHECK_TIMEOUT_S),
        ("alert_sinks", lambda: _alert_sinks(core), CHECK_TIMEOUT_S),
    ]
    results: dict[str, list[Check]] = {}

    async def run_one(name: str, fn: Callable[[], Awaitable[list[Check]]], timeout_s: float) -> None:
        results[name] = [Check(name, "fail", f"no answer within {timeout_s:g} s", "See the server log.")]
        with anyio.move_on_after(timeout_s):
            try:
                results[name] = await fn()
            except PeteError as exc:
                results[name] = [Check(name, "fail", str(exc))]

    async with anyio.create_task_group() as tg:
        for name, fn, timeout_s in jobs:
            tg.start_soon(run_one, name, fn, timeout_s)
    checks = [check for name, _, _ in jobs for check in results[name]]
    figures = key_figures(core.metrics.snapshot())
    figures["active_model"] = core.active_alias
    health = endpoint.get("health")
    if isinstance(health, EndpointHealth):
        w = health.workers
        figures.update(
            workers_idle=w.idle,
            workers_running=w.running,
            workers_initializing=w.initializing,
            queue_depth=health.jobs.in_queue,
            jobs_in_progress=health.jobs.in_progress,
        )
    return HealthReport(checks, figures)


def key_figures(snapshot: dict[str, Any]) -> dict[str, Figure]:
    """The few numbers an operator wants at a glance, from the metrics snapshot (old or new shape)."""
    nested = snapshot.get("totals")
    totals: dict[str, Any] = nested if isinstance(nested, dict) else snapshot
    ttft_raw = totals.get("ttft")
    ttft: dict[str, Any] = ttft_raw if isinstance(ttft_raw, dict) else {}
    figures: dict[str, Figure] = {
        "requests": totals.get("requests"),
        "errors": totals.get("errors"),
        "success_rate": totals.get("success_rate"),
        "ttft_p50_s": ttft.get("p50"),
        "ttft_p95_s": ttft.get("p95"),
        "active_jobs": snapshot.get("active_jobs"),
        "live_calls": snapshot.get("live_calls"),
        "errors_24h": snapshot.get("errors_24h"),
    }
    return {k: v for k, v in figures.items() if v is not None}


# --- the checks ----------------------------------------------------------------------------
async def _runpod_endpoint(core: Core) -> list[Check]:
    name = "runpod_endpoint"
    provider = core.router.providers.get(RUNPOD_PROVIDER)
    if provider is None:
        return [
            Check(
                name, "skip", "RunPod not configured: this gateway has no runpod provider.", RUNPOD_NOT_CONFIGURED_HINT
            )
        ]
    try:
        result = await provider.health()
    except AuthError as exc:
        return [Check(name, "fail", f"unauthorised: {exc}", AUTH_HINT)]
    if not result.ok:
        hint = (
            AUTH_HINT
            if any(code in result.detail for code in ("401", "403"))
            else ("Is the endpoint up? `pete up` starts the local one; else check RUNPOD_ENDPOINT_ID, RUNPOD_BASE_URL.")
        )
        return [Check(name, "fail", result.detail, hint)]
    return [Check(name, "ok", f"reachable and authorised: {result.detail}")]


async def _runpod_workers(core: Core, out: dict[str, EndpointHealth | PeteError | None]) -> list[Check]:
    client = runpod_client(core)
    if client is None:
        missing = "RunPod not configured."
        return [
            Check("runpod_workers", "skip", missing, RUNPOD_NOT_CONFIGURED_HINT),
            Check("runpod_queue", "skip", missing, RUNPOD_NOT_CONFIGURED_HINT),
        ]
    try:
        health = await client.health()
    except PeteError as exc:
        hint = AUTH_HINT if isinstance(exc, AuthError) else "Is the endpoint up? Check RUNPOD_ENDPOINT_ID."
        return [Check("runpod_workers", "fail", str(exc), hint), Check("runpod_queue", "skip", "unknown")]
    out["health"] = health
    w, jobs = health.workers, health.jobs
    serving = w.idle + w.ready + w.running
    counts = f"idle {w.idle}, running {w.running}, initialising {w.initializing}"
    if w.unhealthy:
        workers = Check("runpod_workers", "warn", f"{counts}, unhealthy {w.unhealthy}", "Look at the worker logs.")
    elif serving == 0 and w.initializing:
        workers = Check("runpod_workers", "warn", f"{counts}: cold start in progress", "Wait for the workers.")
    elif serving == 0:
        workers = Check(
            "runpod_workers",
            "warn",
            f"{counts}: scaled to zero, the next request cold-starts a worker",
            "Set min workers to 1 for no cold starts (it bills idle GPU time).",
        )
    else:
        workers = Check("runpod_workers", "ok", counts)
    depth = f"{jobs.in_queue} queued, {jobs.in_progress} in progress"
    if jobs.in_queue and serving == 0 and not w.initializing:
        queue = Check(
            "runpod_queue",
            "fail",
            f"{depth} and no worker to take them",
            "Check max workers and GPU availability; purge_queue drops stale jobs.",
        )
    elif jobs.in_queue > 2 * max(serving, 1):
        queue = Check("runpod_queue", "warn", f"{depth}: the queue is growing", "Raise max workers.")
    else:
        queue = Check("runpod_queue", "ok", depth)
    return [workers, queue]


async def _active_model(core: Core, probe: bool, budget_s: float) -> list[Check]:
    name = "active_model"
    spec = core.active
    if not probe:
        return [await _active_model_state(core)]
    started = time.perf_counter()
    first: float | None = None
    try:
        with anyio.fail_after(budget_s):
            options = ChatOptions(max_tokens=1, temperature=0.0)
            async for event in core.router.stream(spec, [Message(role="user", content="Hi")], options):
                if isinstance(event, TextDelta) and first is None:
                    first = time.perf_counter() - started
    except TimeoutError:
        return [
            Check(
                name,
                "fail",
                f"{spec.alias} gave no token within {budget_s:g} s",
                "A RunPod cold start can take minutes: check runpod_workers; run_prompt returns a job id.",
            )
        ]
    except AuthError as exc:
        return [Check(name, "fail", f"{spec.alias}: {exc}", AUTH_HINT)]
    except PeteError as exc:
        return [
            Check(name, "fail", f"{spec.alias}: {exc}", "Try switch_model to another model, or check the provider.")
        ]
    took = first if first is not None else time.perf_counter() - started
    return [Check(name, "ok", f"{spec.alias} answered a one-token probe in {took:.2f} s")]


async def _active_model_state(core: Core) -> Check:
    """The active model's providers, by their own state (no prompt, no job)."""
    name = "active_model"
    spec = core.active
    routes = core.router.routes(spec)
    where = f"{spec.alias} ({spec.context_window}-token window)"
    if not routes:
        return Check(name, "fail", f"{where}: no configured provider serves it", "Configure one of its providers.")
    states: list[str] = []
    serving: list[str] = []
    for route in routes:
        try:
            result = await core.router.provider(route.provider).health()
            ok, detail = result.ok, result.detail
        except PeteError as exc:
            ok, detail = False, str(exc)
        states.append(f"{route.provider}:{route.model} {'up' if ok else f'DOWN ({detail})'}")
        if ok:
            serving.append(route.provider)
    text = f"{where}: {'; '.join(states)}; not probed (the probe {PROBE_COST})"
    if not serving:
        return Check(name, "fail", text, "No provider of the active model is up: see the checks above.")
    if serving[0] != routes[0].provider:
        return Check(name, "warn", text, f"Its first provider is down; {serving[0]} would answer.")
    return Check(name, "ok", text)


async def _fallbacks(core: Core) -> list[Check]:
    name = "fallback_providers"
    spec = core.active
    configured = core.router.routes(spec)[1:]
    if not configured:
        return [
            Check(
                name,
                "warn",
                f"{spec.alias} has no fallback provider",
                "Set OPENROUTER_API_KEY or OLLAMA_URL so a RunPod outage does not stop calls.",
            )
        ]
    states: list[str] = []
    bad = 0
    for route in configured:
        try:
            result = await core.router.provider(route.provider).health()
            ok, detail = result.ok, result.detail
        except PeteError as exc:
            ok, detail = False, str(exc)
        bad += not ok
        states.append(f"{route.provider}:{route.model} {'ok' if ok else 'DOWN'} ({detail})")
    if bad:
        return [Check(name, "warn", "; ".join(states), "Check the fallback provider's key and URL.")]
    return [Check(name, "ok", "; ".join(states))]


async def _storage(core: Core) -> list[Check]:
    writable = await anyio.to_thread.run_sync(core.store.writable)
    if writable:
        return [Check("storage", "ok", f"{core.store.engine.name} store writable at {core.store.location}")]
    engine = core.store.engine
    return [Check("storage", "fail", f"cannot write the {engine.name} store at {core.store.location}", engine.hint)]


async def _alert_sinks(core: Core) -> list[Check]:
    settings = core.settings
    sinks: list[str] = []
    if settings.slack_webhook_url is not None:
        sinks.append("Slack")
    if settings.github_token is not None and settings.github_repo:
        sinks.append(f"GitHub issues on {settings.github_repo}")
    elif settings.github_token is not None:
        return [
            Check("alert_sinks", "warn", "GITHUB_TOKEN is set but GITHUB_REPO is not", "Set GITHUB_REPO=owner/name.")
        ]
    if not sinks:
        return [
            Check(
                "alert_sinks",
                "warn",
                "no alert sink configured: outages alert nobody",
                "Set SLACK_WEBHOOK_URL and/or GITHUB_TOKEN with GITHUB_REPO.",
            )
        ]
    return [Check("alert_sinks", "ok", ", ".join(sinks))]
