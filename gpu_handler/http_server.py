"""`python -m gpu_handler --http`: the worker as its own HTTP server, for RunPod load-balancing endpoints.

A load-balancing endpoint has no queue: RunPod sends each request straight to a worker's HTTP
server on `PORT` and asks `/ping` on `PORT_HEALTH` (200 healthy, 204 initializing, anything
else unhealthy) which workers may get traffic. This serves the same backends and the same
handler as the queue worker, so a reply is byte for byte the OpenAI route's:

    GET  /ping                  204 while the model server loads, 200 once ready, 503 if it never came up
    POST /v1/chat/completions   OpenAI chat completions (SSE when `stream`), Pete's `num_ctx` read too
    GET  /v1/models             the model server's models

Each request runs as one job of `JobHandler.handle` with id `X-Request-Id` (or a fresh one),
so a streamed answer opens with `runpod_job_id` like the queue worker's. A client that hangs
up cancels its request, which closes the model server's stream: the GPU stops at once.
The server starts listening before the model server is ready, so `/ping` reports the cold
start (RunPod measures it from the first 204 to the first 200).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pete_mcp.contract import ErrorCode, JobError

from .errors import WorkerError
from .handler import JobHandler

__all__ = ["build_http_app"]

logger = logging.getLogger(__name__)

_STATUS_OF = {
    ErrorCode.BAD_INPUT: 400,
    ErrorCode.MODEL_NOT_FOUND: 404,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.MODEL_SERVER_UNAVAILABLE: 503,
}


class _Readiness:
    def __init__(self) -> None:
        self.ready = False
        self.failure: str | None = None


def build_http_app(handler: JobHandler, prepare: Callable[[], Awaitable[object]] | None = None) -> Starlette:
    """The worker's app; `prepare` (wait for the model server, preload) runs in the background at start."""
    readiness = _Readiness()

    async def get_ready() -> None:
        try:
            if prepare is not None:
                await prepare()
        except WorkerError as err:
            readiness.failure = str(err)
            logger.error("worker not ready: %s", err)
        else:
            readiness.ready = True

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(get_ready())
        try:
            yield
        finally:
            task.cancel()

    async def ping(_request: Request) -> Response:
        if readiness.failure is not None:
            return JSONResponse({"status": "unhealthy", "reason": readiness.failure}, status_code=503)
        if not readiness.ready:
            return Response(status_code=204)
        return JSONResponse({"status": "healthy"})

    async def chat_completions(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _error(400, ErrorCode.BAD_INPUT, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _error(400, ErrorCode.BAD_INPUT, "The request body must be a JSON object (a chat completion).")
        job_id = request.headers.get("x-request-id") or f"lb-{uuid.uuid4().hex}"
        job = {"id": job_id, "input": {"openai_route": "/v1/chat/completions", "openai_input": body}}
        return await _answer(handler.handle(job), stream=bool(body.get("stream")))

    async def models(_request: Request) -> Response:
        job = {"id": f"lb-{uuid.uuid4().hex}", "input": {"openai_route": "/v1/models"}}
        return await _answer(handler.handle(job), stream=False)

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def _answer(outputs: AsyncGenerator[Any, None], *, stream: bool) -> Response:
    """The first output decides the answer: an error, one JSON body, or the start of an SSE stream."""
    try:
        first = await anext(outputs)
    except StopAsyncIteration:
        return _error(500, ErrorCode.INTERNAL, "The worker produced no answer.")
    except BaseException:
        await outputs.aclose()
        raise
    if isinstance(first, dict) and "error" in first:
        await outputs.aclose()
        error = _decoded(first["error"])
        return _error(_STATUS_OF.get(error.code, 500), error.code, error.message)
    if not stream:
        await outputs.aclose()
        return JSONResponse(first)
    headers = {"Cache-Control": "no-cache"}
    return StreamingResponse(_frames(first, outputs), media_type="text/event-stream", headers=headers)


async def _frames(first: Any, outputs: AsyncGenerator[Any, None]) -> AsyncIterator[str]:
    async with aclosing(outputs):  # a hang-up cancels this task: the handler and its model request stop
        yield str(first)
        async for output in outputs:
            if isinstance(output, dict) and "error" in output:
                error = _decoded(output["error"])
                payload = {"error": {"message": error.message, "type": "worker_error", "code": error.code.value}}
                yield f"data: {json.dumps(payload)}\n\n"
                return
            yield str(output)


def _decoded(raw: Any) -> JobError:
    try:
        return JobError.model_validate_json(raw) if isinstance(raw, str) else JobError.model_validate(raw)
    except ValueError:
        return JobError(code=ErrorCode.INTERNAL, message=str(raw))


def _error(status: int, code: ErrorCode, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "worker_error", "code": code.value}}, status_code=status)
