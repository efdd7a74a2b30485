"""The RunPod provider: Pete's chat jobs on a RunPod serverless endpoint (real or local).

Why a thin adapter: `RunPodClient` already speaks RunPod's public API (streaming, safe
retries, typed errors, `/cancel` on early exit); this maps its events onto the provider
protocol the router races, so a RunPod cold start can be hedged like any other provider.
Closing the stream early (a hedge lost, a caller hung up) cancels the RunPod job.

It also knows the endpoint's live state for free (`EndpointState`: RunPod's `/health`, polled
every few seconds while calls are active, shared with the metrics poll), so the router can
hedge at once or skip a cold endpoint (`readiness`) and warm it for the call's next turns
(`warm_soon`). A turn sent while no worker is idle goes by `/run` + `/stream` even when the
OpenAI route is configured: it is the likely loser of a race, and there its job id is known
from the start, so `/cancel` stops it on RunPod's side even while it is queued. On the OpenAI
route the id comes in the worker's opening frame, i.e. only once a worker has started the job
(RunPod does not document that hanging up cancels the job, so the route's loser is
`/cancel`led by that id).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pete_mcp.contract import ChatJob, ChatOptions, ChatResult, ControlJob, ControlResult, Message
from pete_mcp.core import (
    Completion,
    JobStarted,
    PeteError,
    ProviderError,
    ProviderHealth,
    StreamEvent,
    TextDelta,
)
from pete_mcp.runpod import EndpointState, RunPodClient

from ._warming import BackgroundWarming

__all__ = ["RunPodProvider"]

log = logging.getLogger(__name__)


def _traceparent() -> str | None:
    """The current span's W3C traceparent (for the worker's span to join the turn's trace); None untraced."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


class RunPodProvider(BackgroundWarming):
    """Streams chat jobs through a `RunPodClient`; warms models with control jobs."""

    def __init__(
        self,
        client: RunPodClient,
        *,
        use_openai_route: bool,
        name: str = "runpod",
        warm_timeout_s: float = 300.0,
        health_poll_s: float = 2.0,
        worker_slots: int = 1,
    ) -> None:
        self.name = name
        self.client = client
        self.use_openai_route = use_openai_route
        self.warm_timeout_s = warm_timeout_s
        self._watch(EndpointState(client.health, interval_s=health_poll_s, slots_per_worker=worker_slots))

    # --- chat --------------------------------------------------------------------------------
    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        job = ChatJob(model=model, messages=list(messages), options=options, stream=True, trace=_traceparent())
        started = time.perf_counter()
        ttft: float | None = None
        announced = False
        # Without an idle worker this job may lose a race: take the path whose job id we hold.
        openai_route = self.use_openai_route and self.state.readiness() in ("warm", "unknown")
        async with self.client.stream_chat(job, use_openai_route=openai_route) as chat:
            async for event in chat:
                if isinstance(event, JobStarted):
                    if not announced:
                        announced = True
                        yield event
                    continue
                if not announced and chat.job_id:  # a /stream job: its id is known once /run answers
                    announced = True
                    yield JobStarted(chat.job_id)
                if isinstance(event, TextDelta):
                    if not event.text:
                        continue
                    if ttft is None:
                        ttft = time.perf_counter() - started
                    yield event
                elif isinstance(event, ChatResult):
                    yield Completion(
                        text=event.text,
                        provider=self.name,
                        model=model,
                        finish_reason=event.finish_reason,
                        usage=event.usage,
                        ttft_s=ttft if ttft is not None else event.timings.ttft_s,
                        total_s=time.perf_counter() - started,
                        job_id=chat.job_id,
                        worker_id=event.worker_id,
                    )
                    return
        raise ProviderError(f"RunPod ended the stream for {model!r} without a result.", provider=self.name)

    async def warm(self, model: str) -> float:
        """Run a warm-up control job (the worker loads `model` and keeps it resident); seconds taken.

        Raises:
            ProviderTimeout: not done within `warm_timeout_s` (the job is cancelled).
            JobFailed: the worker could not load the model (its own words in the message).
        """
        started = time.perf_counter()
        job = await self.client.run_and_wait(ControlJob(action="warmup", model=model), deadline_s=self.warm_timeout_s)
        if job.output is not None:
            output = job.output[-1] if isinstance(job.output, list) and job.output else job.output
            try:
                result = ControlResult.model_validate(output)
            except ValueError:
                log.info("warm-up of %s answered %r (not a ControlResult)", model, output)
            else:
                log.info("warmed %s on worker %s (load %.2f s)", model, result.worker_id, result.load_s or 0.0)
        return time.perf_counter() - started

    async def health(self) -> ProviderHealth:
        """The endpoint's `/health` (never wakes a GPU): worker and queue figures."""
        try:
            health = await self.client.health()
        except PeteError as exc:
            return ProviderHealth(False, f"{self.name} health check failed: {exc}")
        self.state.note(health)
        workers, jobs = health.workers, health.jobs
        figures: dict[str, int | float | str] = {
            "workers_idle": workers.idle,
            "workers_running": workers.running,
            "workers_initializing": workers.initializing,
            "workers_ready": workers.ready,
            "workers_throttled": workers.throttled,
            "workers_unhealthy": workers.unhealthy,
            "in_queue": jobs.in_queue,
            "in_progress": jobs.in_progress,
            "completed": jobs.completed,
            "failed": jobs.failed,
        }
        stuck = workers.serving == 0 and jobs.in_queue > 0
        detail = (
            f"{workers.idle} idle, {workers.running} running, {workers.initializing} initializing workers; "
            f"{jobs.in_queue} queued, {jobs.in_progress} in progress"
        )
        if stuck:
            detail += " — jobs are waiting and no worker serves them"
        return ProviderHealth(not stuck, detail, figures)

    async def cancel(self, job_id: str) -> None:
        """`/cancel` the job, best effort: a failure is logged, never raised."""
        try:
            await self.client.cancel(job_id)
        except PeteError as exc:
            log.warning("could not cancel RunPod job %s: %s", job_id, exc)
