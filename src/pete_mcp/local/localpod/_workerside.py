"""The worker protocol: what the unmodified runpod SDK 1.12.0 worker loop calls.

`job-take` / `job-take-batch` and `job-stop` are long-polls: the SDK re-polls at once after an
empty answer, so an instant 204 would be a busy loop (reference §2.3, §2.7); a submission,
cancel or timeout wakes them immediately. `job-done` bodies are raw JSON sent as
form-urlencoded (§2.4) and are mapped as §2.4 says. Posts about a job that is no longer
running on that worker (cancelled, timed out, requeued) are acknowledged and ignored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._admission import admit_worker
from ._http import Problem
from ._job import Job, JobStatus
from ._state import PodState
from ._workers import Worker

__all__ = ["WorkerApi"]

logger = logging.getLogger(__name__)

_PREFIX = "/v2/{endpoint_id}"
_MAX_BATCH = 1000


class WorkerApi:
    def __init__(self, state: PodState) -> None:
        self._state = state

    def routes(self) -> list[Route]:
        return [
            Route(f"{_PREFIX}/job-take/{{worker_id}}", self.take, methods=["GET"]),
            Route(f"{_PREFIX}/job-take-batch/{{worker_id}}", self.take_batch, methods=["GET"]),
            Route(f"{_PREFIX}/job-done/{{worker_id}}/{{job_id}}", self.done, methods=["POST"]),
            Route(f"{_PREFIX}/job-stream/{{worker_id}}/{{job_id}}", self.stream, methods=["POST"]),
            Route(f"{_PREFIX}/ping/{{worker_id}}", self.ping, methods=["GET"]),
            Route(f"{_PREFIX}/job-stop/{{worker_id}}", self.stop, methods=["GET"]),
        ]

    async def take(self, request: Request) -> Response:
        worker = admit_worker(self._state, request, "job-take")
        self._state.wire.record("job-take", request)
        jobs = await self._hold_for_jobs(request, worker, limit=1)
        return JSONResponse(_payload(jobs[0])) if jobs else Response(status_code=204)

    async def take_batch(self, request: Request) -> Response:
        worker = admit_worker(self._state, request, "job-take")
        self._state.wire.record("job-take-batch", request)
        raw = request.query_params.get("batch_size", "1")
        if not raw.isdigit() or not 1 <= int(raw) <= _MAX_BATCH:
            raise Problem(400, f"batch_size must be 1-{_MAX_BATCH}.")
        jobs = await self._hold_for_jobs(request, worker, limit=int(raw))
        return JSONResponse([_payload(job) for job in jobs]) if jobs else Response(status_code=204)

    async def done(self, request: Request) -> JSONResponse:
        worker = admit_worker(self._state, request, "job-done")
        body = await self._posted_json(request, "job-done")
        job = self._running_job(request, worker)
        if job is None:
            return JSONResponse({})
        board = self._state.board
        if body.get("status") == "IN_PROGRESS":
            board.record_progress(job, body.get("output"))
            return JSONResponse({})
        error = body.get("error")
        if error:
            message = error if isinstance(error, str) else json.dumps(error)
            board.finish_reported(
                job, JobStatus.FAILED, output=body.get("output"), has_output="output" in body, error=message
            )
        else:
            board.finish_reported(job, JobStatus.COMPLETED, output=body.get("output"))
        worker.jobs_done += 1
        worker.last_model = _job_model(job.input) or worker.last_model
        if body.get("stopPod"):
            self._state.supervisor.retire(worker, "the worker asked to stop (stopPod)")
        return JSONResponse({})

    async def stream(self, request: Request) -> JSONResponse:
        worker = admit_worker(self._state, request, "job-stream")
        body = await self._posted_json(request, "job-stream")
        if self._running_job(request, worker) is None:
            return JSONResponse({})
        delay_s = self._state.faults.stream_delay_s
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        job = self._running_job(request, worker)  # it may have been cancelled meanwhile
        if job is not None and "output" in body:
            self._state.board.add_chunk(job, body["output"])
        return JSONResponse({})

    async def ping(self, request: Request) -> JSONResponse:
        worker = admit_worker(self._state, request, "ping")
        self._state.wire.record("ping", request)
        worker.last_ping_at = self._state.board.now()
        job_ids = request.query_params.get("job_id", "")
        worker.ping_job_ids = tuple(job_id for job_id in job_ids.split(",") if job_id)
        if request.query_params.get("status") == "unhealthy":
            check = request.query_params.get("check", "?")
            worker.unhealthy_reason = f"failed fitness check {check}: {request.query_params.get('reason', '')}"
        return JSONResponse({})

    async def stop(self, request: Request) -> Response:
        worker = admit_worker(self._state, request, "job-stop")
        self._state.wire.record("job-stop", request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._state.config.stop_hold_s
        while True:
            if worker.stop_requests:
                job_ids = list(worker.stop_requests)
                worker.stop_requests.clear()
                return JSONResponse({"jobsToStop": job_ids})
            remaining = deadline - loop.time()
            if not worker.live or self._state.closing or remaining <= 0:
                return Response(status_code=204)
            await worker.stop_wakeup.wait(remaining)

    # --- helpers

    async def _hold_for_jobs(self, request: Request, worker: Worker, *, limit: int) -> list[Job]:
        """Wait (≤ take_hold_s) until jobs can be handed to `worker`; [] when none came."""
        state = self._state
        state.workers.mark_polling(worker)
        worker.open_takes += 1
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + state.config.take_hold_s
            while worker.accepting and not state.closing:
                if _has_ready_job(state) and not await request.is_disconnected():
                    jobs = state.board.take(worker.id, limit)
                    if jobs:
                        return jobs
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                next_ready = state.board.next_ready_at()
                if next_ready is not None:
                    remaining = max(0.01, min(remaining, next_ready - state.board.now()))
                await state.board.queue_changed.wait(remaining)
            return []
        finally:
            worker.open_takes -= 1

    async def _posted_json(self, request: Request, route: str) -> dict[str, Any]:
        raw = await request.body()
        self._state.wire.record(route, request, raw)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise Problem(400, f"The {route} body is not JSON.") from None
        if not isinstance(body, dict):
            raise Problem(400, f"The {route} body must be a JSON object.")
        return body

    def _running_job(self, request: Request, worker: Worker) -> Job | None:
        job = self._state.board.get(request.path_params["job_id"])
        if job is None or job.worker_id != worker.id or job.status is not JobStatus.IN_PROGRESS:
            logger.debug("Ignoring a late post from %s for %s.", worker.id, request.path_params["job_id"])
            return None
        return job


def _job_model(job_input: Any) -> str | None:
    """The model a job asks for: Pete's chat job names it, the OpenAI route carries it in its body."""
    if not isinstance(job_input, dict):
        return None
    body = job_input.get("openai_input")
    model = job_input.get("model") or (body.get("model") if isinstance(body, dict) else None)
    return str(model) if model else None


def _payload(job: Job) -> dict[str, Any]:
    return {"id": job.id, "input": job.input}


def _has_ready_job(state: PodState) -> bool:
    now = state.board.now()
    return any(job.ready_at <= now for job in state.board.queued())
