"""The gateway's client for one RunPod serverless endpoint's public API (real or local).

Why not the `runpod` SDK's client: it sleeps 1 s before every stream poll, loops forever on
a cancelled job, has no `/runsync` wait, never checks HTTP status and retries nothing
(shared/reference/runpod.md §3). This is httpx on the injected `AsyncClient` (one pool per
process), with explicit timeouts, safe retries and typed errors (see `_runpod_http`).

    client = RunPodClient(http, base_url=..., endpoint_id=..., api_key=...)
    job = await client.run_and_wait({"kind": "chat", ...}, deadline_s=20)
    async with client.stream_chat(chat_job, use_openai_route=False) as chat:
        async for event in chat:   # JobStarted, TextDelta..., ChatResult
            ...

Leaving a stream early (cancellation, `break` inside `async with`, an error) cancels the
RunPod job, best effort, so a hung-up caller never keeps a GPU busy.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

import anyio
import httpx

from pete_mcp.contract import ChatJob
from pete_mcp.core import (
    ConfigError,
    PeteError,
    ProviderTimeout,
    Settings,
)

from ._chat import ChatEvent, ChatStream, SeenStatus, openai_events, runpod_stream_events
from ._http import PROVIDER, RetryPolicy, RunPodHTTP, Sleep, parse_body
from ._openai_sse import openai_chunks
from ._outcomes import raise_for_job
from ._queue_watch import QueueWatch
from ._requests import OPENAI_JOB_ERROR_STATUSES, JobInput, PolicyInput, job_path, json_object, request_body
from ._wire import (
    TERMINAL_STATUSES,
    EndpointHealth,
    HealthJobs,
    HealthWorkers,
    Job,
    JobPolicy,
    JobRef,
    JobStatus,
    PurgeResult,
    StreamBatch,
    WorkerError,
    decode_worker_error,
)

__all__ = [
    "TERMINAL_STATUSES",
    "ChatEvent",
    "ChatStream",
    "EndpointHealth",
    "HealthJobs",
    "HealthWorkers",
    "Job",
    "JobPolicy",
    "JobRef",
    "JobStatus",
    "PurgeResult",
    "RetryPolicy",
    "RunPodClient",
    "StreamBatch",
    "WorkerError",
    "decode_worker_error",
    "raise_for_job",
    "runpod_client_from_settings",
]

logger = logging.getLogger(__name__)

RUNSYNC_WAIT_MS = (1_000, 300_000)  # what RunPod accepts for /runsync?wait= (§1.5)


class RunPodClient:
    """Async client for `{base_url}/{endpoint_id}/*`. Never logs or reports the API key.

    Raises (from every call): `AuthError` (401/403), `NotFound` (404: endpoint, or an expired
    or unknown job), `InputError` (other 4xx), `ProviderUnavailable` (unreachable, 5xx, 429
    after retries, no workers with a stuck queue), `ProviderTimeout`, `JobFailed`.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        endpoint_id: str,
        api_key: str,
        timeout_s: float = 30,
        retries: int = 3,
        backoff_base_s: float = 0.1,
        stream_wait_ms: int = 2_000,
        idle_poll_s: tuple[float, float] = (0.05, 0.2),
        queue_check_s: float = 5.0,
        cancel_timeout_s: float = 5.0,
        key_setting: str = "RUNPOD_API_KEY",
        endpoint_setting: str = "RUNPOD_ENDPOINT_ID",
        sleep: Sleep = anyio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not endpoint_id or "/" in endpoint_id:
            raise ConfigError(f"{endpoint_setting} must be a RunPod endpoint id, got {endpoint_id!r}.")
        if not api_key:
            raise ConfigError(f"{key_setting} is empty: set it to a RunPod API key.")
        self.endpoint_id = endpoint_id
        self.endpoint_url = f"{base_url.rstrip('/')}/{endpoint_id}"
        self._stream_wait_ms = stream_wait_ms
        self._idle_poll_s = idle_poll_s
        self.queue_check_s = queue_check_s
        self._cancel_timeout_s = cancel_timeout_s
        self._sleep = sleep
        self._http = RunPodHTTP(
            http,
            endpoint_url=self.endpoint_url,
            endpoint_id=endpoint_id,
            api_key=api_key,
            timeout_s=timeout_s,
            retry=RetryPolicy(retries=retries, backoff_base_s=backoff_base_s, max_retry_after_s=timeout_s),
            sleep=sleep,
            rng=rng or random.Random(),
            key_setting=key_setting,
            endpoint_setting=endpoint_setting,
        )

    def __repr__(self) -> str:
        return f"RunPodClient({self.endpoint_url!r})"

    # --- jobs ------------------------------------------------------------------------------
    async def run(self, input: JobInput, *, webhook: str | None = None, policy: PolicyInput = None) -> JobRef:
        """Queue a job (`POST /run`). Never retried once sent: a repeat could run the job twice."""
        response = await self._http.send(
            "POST", "run", repeatable=False, json=request_body(input, webhook=webhook, policy=policy)
        )
        return parse_body(response, JobRef, what="/run")

    async def runsync(self, input: JobInput, *, wait_s: float, policy: PolicyInput = None) -> Job:
        """Run a job and wait up to `wait_s` (clamped to RunPod's 1–300 s) for it.

        A job not finished in time comes back IN_QUEUE or IN_PROGRESS; poll `status`. A FAILED
        job comes back as a Job (RunPod may send it with HTTP 400). Never retried once sent.
        """
        wait_ms = min(max(round(wait_s * 1000), RUNSYNC_WAIT_MS[0]), RUNSYNC_WAIT_MS[1])
        response = await self._http.send(
            "POST",
            "runsync",
            repeatable=False,
            json=request_body(input, webhook=None, policy=policy),
            params={"wait": wait_ms},
            wait_s=wait_ms / 1000,
            accept=frozenset({400}),
        )
        if response.status_code == 400:
            return self._failed_runsync(response)
        return parse_body(response, Job, what="/runsync")

    async def run_and_wait(
        self,
        input: JobInput,
        *,
        deadline_s: float,
        policy: PolicyInput = None,
        runsync_wait_s: float | None = None,
    ) -> Job:
        """Run a job to completion within `deadline_s`: `/runsync`, then `/status` polls.

        `/runsync` holds for `runsync_wait_s` (default: the whole deadline); a job not done by
        then is polled, backing off from 100 ms to 1 s. At the deadline the job is cancelled.

        Raises:
            ProviderTimeout: not finished by the deadline (cancelled), or TIMED_OUT.
            JobFailed: FAILED (with the worker's error) or CANCELLED.
            ProviderUnavailable: stuck in the queue of an endpoint with no workers.
        """
        deadline = anyio.current_time() + deadline_s
        hold_s = deadline_s if runsync_wait_s is None else min(runsync_wait_s, deadline_s)
        if hold_s >= RUNSYNC_WAIT_MS[0] / 1000:
            job = await self.runsync(input, wait_s=hold_s, policy=policy)
        else:  # /runsync cannot wait less than 1 s: queue it and poll instead.
            ref = await self.run(input, policy=policy)
            job = Job(id=ref.id, status=ref.status)
        seen = SeenStatus(job.status)
        try:
            watch = QueueWatch(self, job.id)
            delay = 0.1
            while not job.is_terminal:
                remaining = deadline - anyio.current_time()
                if remaining <= 0:
                    await self._cancel_quietly(job.id)
                    seen.status = JobStatus.CANCELLED
                    raise ProviderTimeout(
                        f"RunPod job {job.id} did not finish within {deadline_s:g} s, so it was cancelled.",
                        provider=PROVIDER,
                    )
                await self._sleep(min(delay, remaining))
                delay = min(delay * 2, 1.0)
                job = await self.status(job.id)
                seen.status = job.status
                await watch.observe(job.status, seen)
        finally:
            if not seen.terminal:
                await self._cancel_quietly(job.id)
        return raise_for_job(job)

    async def status(self, job_id: str) -> Job:
        """`GET /status/{id}`: the job object, whatever its state (FAILED is data here, not an error)."""
        response = await self._http.send("GET", f"status/{job_path(job_id)}", repeatable=True, job_id=job_id)
        return parse_body(response, Job, what="/status")

    async def stream(self, job_id: str, *, wait_ms: int | None = None) -> StreamBatch:
        """`GET /stream/{id}?wait=ms`: the chunks not returned before (consume-once) and the status."""
        wait = self._stream_wait_ms if wait_ms is None else wait_ms
        response = await self._http.send(
            "GET",
            f"stream/{job_path(job_id)}",
            repeatable=True,
            params={"wait": wait} if wait > 0 else None,
            wait_s=wait / 1000,
            job_id=job_id,
        )
        return parse_body(response, StreamBatch, what="/stream")

    async def iter_stream(self, job_id: str, *, wait_ms: int | None = None) -> AsyncIterator[Any]:
        """Yield each chunk's `output` as soon as it arrives, until the job is terminal.

        A tight `/stream` loop: each call long-polls with `wait`; only a fast empty answer (a
        server that does not hold) is followed by a short sleep (50 ms growing to 200 ms).

        Raises:
            JobFailed: FAILED (with the worker's error from `/status`) or CANCELLED.
            ProviderTimeout: TIMED_OUT.
            ProviderUnavailable: stuck in the queue of an endpoint with no workers.
        """
        async for output in self._stream_outputs(job_id, wait_ms, SeenStatus()):
            yield output

    async def _stream_outputs(self, job_id: str, wait_ms: int | None, seen: SeenStatus) -> AsyncIterator[Any]:
        wait = self._stream_wait_ms if wait_ms is None else wait_ms
        fast_s = min(wait / 2000, 0.25)
        idle_min, idle_max = self._idle_poll_s
        idle = idle_min
        watch = QueueWatch(self, job_id)
        while True:
            asked = anyio.current_time()
            batch = await self.stream(job_id, wait_ms=wait)
            seen.status = batch.status
            for output in batch.outputs:
                yield output
            if batch.stream:
                idle = idle_min
                continue
            if batch.status.is_terminal:
                break
            if anyio.current_time() - asked < fast_s:
                await self._sleep(idle)
                idle = min(idle * 2, idle_max)
            await watch.observe(batch.status, seen)
        if batch.status is JobStatus.FAILED:
            raise_for_job(await self._failed_job(job_id))
        raise_for_job(Job(id=job_id, status=batch.status))

    async def cancel(self, job_id: str) -> JobRef:
        """`POST /cancel/{id}`: stop a running job or drop a queued one. Safe to repeat."""
        response = await self._http.send("POST", f"cancel/{job_path(job_id)}", repeatable=True, job_id=job_id)
        return parse_body(response, JobRef, what="/cancel")

    async def retry(self, job_id: str) -> JobRef:
        """`POST /retry/{id}`: re-queue a FAILED or TIMED_OUT job with its original input."""
        response = await self._http.send("POST", f"retry/{job_path(job_id)}", repeatable=False, job_id=job_id)
        return parse_body(response, JobRef, what="/retry")

    # --- endpoint --------------------------------------------------------------------------
    async def health(self) -> EndpointHealth:
        """`GET /health`: job counters and workers. Submits no job, so it never wakes a GPU."""
        response = await self._http.send("GET", "health", repeatable=True)
        return parse_body(response, EndpointHealth, what="/health")

    async def purge_queue(self) -> PurgeResult:
        """`POST /purge-queue`: drop every queued (not running) job."""
        response = await self._http.send("POST", "purge-queue", repeatable=False)
        return parse_body(response, PurgeResult, what="/purge-queue")

    # --- OpenAI-compatible route ------------------------------------------------------------
    async def openai_models(self) -> dict[str, Any]:
        """`GET /openai/v1/models` (it runs a job on a worker; RunPod does not answer it itself)."""
        response = await self._http.send("GET", "openai/v1/models", repeatable=True)
        return json_object(response, what="/openai/v1/models")

    async def openai_chat_stream(self, body: Mapping[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """Stream `POST /openai/v1/chat/completions` (`stream: true` forced), yielding chunk dicts.

        Parsed incrementally as the SSE arrives. Not retried once sent (it creates a job).
        RunPod gives no job id on this route (Pete's worker adds `runpod_job_id` to its first
        chunk); closing the stream early hangs up.

        Raises:
            JobFailed: the job failed (an `{"error": ...}` frame or error body).
            ProviderTimeout: the job timed out, or the stream stalled past the read timeout.
            ProviderError: the stream ended without `data: [DONE]` (RunPod cut it short).
        """
        response = await self._http.send(
            "POST",
            "openai/v1/chat/completions",
            repeatable=False,
            json={**body, "stream": True},
            stream=True,
            accept=OPENAI_JOB_ERROR_STATUSES,
        )
        chunks = openai_chunks(response, http=self._http, where="RunPod's OpenAI stream")
        async with aclosing(chunks):  # leaving early closes the response: a hang-up
            async for chunk in chunks:
                yield chunk

    # --- the lowest-latency chat stream ----------------------------------------------------
    def stream_chat(self, job: ChatJob | Mapping[str, Any], *, use_openai_route: bool) -> ChatStream:
        """Stream one chat turn: `JobStarted`, `TextDelta`s, then one `ChatResult`.

        `use_openai_route=False`: `/run` plus the tight `/stream` loop over the worker's
        `StreamChunk`s; `JobStarted(job_id)` comes first and `ChatStream.job_id` is set as soon
        as `/run` answers. `use_openai_route=True`: the OpenAI route's SSE (real push); RunPod
        gives no job id there, but Pete's worker sends it in its opening frame, so `JobStarted`
        comes once a worker has the job. Use it as `async with`: leaving early, or cancellation
        of the consuming task, stops the job (hanging up, then `/cancel` once the id is known;
        shielded).
        """
        chat = job if isinstance(job, ChatJob) else ChatJob.model_validate(dict(job))
        chat = chat.model_copy(update={"stream": True})
        stream = ChatStream()
        if use_openai_route:
            stream.attach(openai_events(self, chat, stream))
        else:
            stream.attach(runpod_stream_events(self, chat, stream))
        return stream

    # --- helpers shared with _runpod_chat --------------------------------------------------
    async def _cancel_quietly(self, job_id: str) -> None:
        """POST /cancel, shielded from the caller's cancellation and bounded in time; never raises."""
        with anyio.CancelScope(shield=True, deadline=anyio.current_time() + self._cancel_timeout_s) as scope:
            try:
                await self.cancel(job_id)
                logger.info("cancelled RunPod job %s", job_id)
            except PeteError as exc:
                logger.warning("could not cancel RunPod job %s: %s", job_id, exc)
        if scope.cancelled_caught:
            logger.warning("could not cancel RunPod job %s within %.1f s", job_id, self._cancel_timeout_s)

    async def _failed_job(self, job_id: str) -> Job:
        try:
            return await self.status(job_id)
        except PeteError as exc:
            return Job(id=job_id, status=JobStatus.FAILED, error=f"(the error could not be read: {exc})")

    def _failed_runsync(self, response: httpx.Response) -> Job:
        try:
            job = Job.model_validate_json(response.content)
        except ValueError:
            job = None
        if job is None or job.status is not JobStatus.FAILED:
            # A plain 400: let the usual mapping explain it.
            self._http.raise_for_status(response, "POST /runsync", job_id=None)
        return job


def runpod_client_from_settings(settings: Settings, http: httpx.AsyncClient) -> RunPodClient:
    """The real endpoint when RUNPOD_API_KEY and RUNPOD_ENDPOINT_ID are both set, else the local one."""
    if settings.uses_real_runpod:
        assert settings.runpod_api_key is not None and settings.runpod_endpoint_id
        return RunPodClient(
            http,
            base_url=settings.runpod_base_url,
            endpoint_id=settings.runpod_endpoint_id,
            api_key=settings.runpod_api_key.get_secret_value(),
            timeout_s=settings.runpod_timeout_s,
        )
    if settings.runpod_api_key is not None or settings.runpod_endpoint_id:
        logger.warning(
            "Only one of RUNPOD_API_KEY and RUNPOD_ENDPOINT_ID is set: using the local endpoint. "
            "Set both to use RunPod."
        )
    return RunPodClient(
        http,
        base_url=f"http://127.0.0.1:{settings.local_endpoint_port}/v2",
        endpoint_id=settings.local_endpoint_id,
        api_key=settings.local_api_key.get_secret_value(),
        key_setting="LOCAL_API_KEY",
        endpoint_setting="LOCAL_ENDPOINT_ID",
        timeout_s=settings.runpod_timeout_s,
    )
