"""The OpenAI-compatible route: `/v2/{endpoint_id}/openai/v1/chat/completions` and friends.

As on RunPod (reference §1.11) a call becomes an ordinary job whose input is
`{"openai_route": "/v1/chat/completions", "openai_input": <body>}` (`/v1/models` has no
`openai_input`). Streaming requests relay the worker's yielded SSE strings as
`text/event-stream` the moment each arrives; others answer the single aggregated element
as the JSON body. A client that hangs up cancels its job, so the worker stops generating.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._admission import admit_public
from ._http import Problem, read_json
from ._job import Job, JobPolicy, JobStatus
from ._state import PodState

__all__ = ["OpenAIApi"]

_PREFIX = "/v2/{endpoint_id}/openai/v1"
_ERROR_STATUS = {JobStatus.FAILED: 500, JobStatus.TIMED_OUT: 504, JobStatus.CANCELLED: 500}
_CHECK_CLIENT_EVERY_S = 1.0


class OpenAIApi:
    def __init__(self, state: PodState) -> None:
        self._state = state

    def routes(self) -> list[Route]:
        return [
            Route(f"{_PREFIX}/chat/completions", self.chat_completions, methods=["POST"]),
            Route(f"{_PREFIX}/completions", self.completions, methods=["POST"]),
            Route(f"{_PREFIX}/models", self.models, methods=["GET"]),
        ]

    async def chat_completions(self, request: Request) -> Response:
        return await self._completion(request, "/v1/chat/completions")

    async def completions(self, request: Request) -> Response:
        return await self._completion(request, "/v1/completions")

    async def models(self, request: Request) -> Response:
        admit_public(self._state, request, "openai")
        job = self._submit({"openai_route": "/v1/models"})
        return await self._answer_once(request, job)

    async def _completion(self, request: Request, route: str) -> Response:
        admit_public(self._state, request, "openai")
        body = await read_json(request, self._state.config.runsync_body_limit)
        if not isinstance(body, dict):
            raise Problem(400, "The request body must be a JSON object.")
        job = self._submit({"openai_route": route, "openai_input": body})
        if body.get("stream"):
            return await self._answer_stream(request, job)
        return await self._answer_once(request, job)

    def _submit(self, job_input: dict[str, Any]) -> Job:
        config = self._state.config
        policy = JobPolicy(execution_timeout_s=config.execution_timeout_ms / 1000, ttl_s=config.ttl_ms / 1000)
        return self._state.board.submit(job_input, policy=policy, sync=True, stall_s=self._state.faults.job_stall_s())

    async def _wait(self, request: Request, job: Job, done: Callable[[], bool]) -> bool:
        """Wait for `done()`; False (and the job cancelled) if the client hung up first."""
        while not await job.wait_until(lambda: done() or self._state.closing, _CHECK_CLIENT_EVERY_S):
            if await request.is_disconnected():
                self._state.board.cancel(job)
                return False
        return True

    async def _answer_once(self, request: Request, job: Job) -> Response:
        if not await self._wait(request, job, lambda: job.settled):
            return Response(status_code=499)
        if job.status is JobStatus.COMPLETED:
            return JSONResponse(_aggregated(job))
        return _job_error(job)

    async def _answer_stream(self, request: Request, job: Job) -> Response:
        if not await self._wait(request, job, lambda: bool(job.chunks) or job.settled):
            return Response(status_code=499)
        if not job.chunks:
            return JSONResponse(_aggregated(job)) if job.status is JobStatus.COMPLETED else _job_error(job)
        return _RelayResponse(self._events(job), on_close=lambda: self._cancel_unless_answered(job))

    def _cancel_unless_answered(self, job: Job) -> None:
        """A client hanging up stops its job, unless the worker already streamed `[DONE]`.

        The client leaves as soon as it reads `[DONE]`, usually before the worker's job-done
        arrives; cancelling then would count a finished answer as CANCELLED.
        """
        answered = any(isinstance(c, str) and "data: [DONE]" in c for c in job.chunks[-1:])
        if not answered:
            self._state.board.cancel(job)

    async def _events(self, job: Job) -> AsyncIterator[str]:
        sent = 0
        while True:
            while sent < len(job.chunks):
                yield _as_sse(job.chunks[sent])
                sent += 1
            if job.settled or self._state.closing:
                break
            await job.changed.wait(_CHECK_CLIENT_EVERY_S)
        if job.status is not JobStatus.COMPLETED:
            error = {"message": _error_message(job), "type": "worker_error", "code": job.status.value}
            yield f"data: {json.dumps({'error': error})}\n\n"


class _RelayResponse(StreamingResponse):
    """An SSE relay that runs `on_close` however it ends (done, client gone, shutdown)."""

    def __init__(self, events: AsyncIterator[str], *, on_close: Callable[[], None]) -> None:
        super().__init__(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self._events = events
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()  # no-op once the job finished; cancels it if the client left early
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()


def _aggregated(job: Job) -> Any:
    """The single aggregated element of a finished job (or its only streamed chunk)."""
    output = job.output
    items = output if isinstance(output, list) else None
    if items is None and output is not None:
        return output
    items = items or job.chunks
    if len(items) == 1:
        return items[0]
    return items


def _as_sse(chunk: Any) -> str:
    return chunk if isinstance(chunk, str) else f"data: {json.dumps(chunk)}\n\n"


def _error_message(job: Job) -> str:
    if job.deleted:
        return "The job expired before it finished."
    return job.error or f"The job ended {job.status.value}."


def _job_error(job: Job) -> JSONResponse:
    status = 504 if job.deleted else _ERROR_STATUS.get(job.status, 500)
    error = {"message": _error_message(job), "type": "worker_error", "code": job.status.value}
    return JSONResponse({"error": error}, status_code=status)
