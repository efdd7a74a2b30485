"""The load-balancing endpoint's front: every request straight to one worker's own HTTP server.

RunPod serves a load-balancing endpoint at `https://{endpoint_id}.api.runpod.ai/{path}`; here
it is `http://127.0.0.1:{port}/lb/{endpoint_id}/{path}`. No queue and no job: the request is
relayed to a ready worker (its `/ping` said 200) and the worker's answer streams back as it
comes, with `X-Runpod-Worker-Id` naming the worker. A client that hangs up closes the
worker's request too, so the worker stops generating.

Worker choice follows RunPod's worker affinity (the `X-Runpod-Worker-Id` request header):
`<id>` prefers that worker unless it is gone or has `lb_requests_per_worker` requests already
(soft); `strict <id>` and `strict-resume <id>` use only it, waiting while it is busy starting,
404 `affinity_worker_gone` once it is gone. Otherwise the least busy ready worker (ties taken
in turn). With none
ready the request waits up to `lb_request_timeout_s` (RunPod: 2 minutes), then 400.
`/ping` answers at once from the workers' state: a ready worker's own `/ping`, else 204.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._admission import admit_public
from ._http import Problem, read_body
from ._state import PodState
from ._workers import Worker, WorkerPhase

__all__ = ["WORKER_ID_HEADER", "LoadBalancerApi", "parse_affinity"]

WORKER_ID_HEADER = "X-Runpod-Worker-Id"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "authorization",
    WORKER_ID_HEADER.lower(),
}
_PROCESSING_TIMEOUT_S = 330.0  # RunPod ends a request after 5.5 minutes with 524


def parse_affinity(value: str | None) -> tuple[str, str | None]:
    """`X-Runpod-Worker-Id` → (mode, worker id): `("none", None)`, `("soft", id)` or `("strict", id)`."""
    if not value or not value.strip():
        return "none", None
    mode, _, rest = value.strip().partition(" ")
    if mode in ("strict", "strict-resume") and rest.strip():
        return "strict", rest.strip()
    return "soft", value.strip()


class LoadBalancerApi:
    def __init__(self, state: PodState, http: httpx.AsyncClient) -> None:
        self._state = state
        self._http = http
        self._turn = 0

    def routes(self) -> list[Route]:
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        return [
            Route("/lb/{endpoint_id}/ping", self.ping, methods=["GET"]),
            Route("/lb/{endpoint_id}/{path:path}", self.relay, methods=methods),
        ]

    async def ping(self, request: Request) -> Response:
        admit_public(self._state, request, "lb")
        self._require_load_balancer()
        ready = self._ready()
        if not ready:
            self._wake_scaler_if_empty()
            return Response(status_code=204)
        worker = min(ready, key=lambda w: w.inflight)
        return await self._forward(request, worker, "ping", body=b"")

    async def relay(self, request: Request) -> Response:
        admit_public(self._state, request, "lb")
        self._require_load_balancer()
        body = await read_body(request, self._state.config.runsync_body_limit)
        worker = await self._choose(request.headers.get(WORKER_ID_HEADER))
        return await self._forward(request, worker, request.path_params["path"], body=body)

    # --- choosing a worker

    def _ready(self) -> list[Worker]:
        return [w for w in self._state.workers.all() if w.phase is WorkerPhase.READY and w.http_port]

    def _wake_scaler_if_empty(self) -> None:
        if not self._state.workers.live():
            self._state.workers.lb_waiting += 1
            self._state.supervisor.reconcile()
            self._state.workers.lb_waiting -= 1

    async def _choose(self, affinity: str | None) -> Worker:
        mode, wanted = parse_affinity(affinity)
        workers = self._state.workers
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._state.config.lb_request_timeout_s
        workers.lb_waiting += 1
        try:
            while True:
                chosen = self._pick(mode, wanted)
                if chosen is not None:
                    return chosen
                self._state.supervisor.reconcile()  # scale from zero now, not at the next tick
                remaining = deadline - loop.time()
                if remaining <= 0 or self._state.closing:
                    raise Problem(400, "No workers available: none became ready within the request timeout.")
                await workers.changed.wait(min(remaining, 1.0))
        finally:
            workers.lb_waiting -= 1

    def _pick(self, mode: str, wanted: str | None) -> Worker | None:
        target = self._state.workers.get(wanted) if wanted else None
        if mode == "strict":
            if target is None or not target.live:
                raise Problem(404, "affinity_worker_gone: the pinned worker is not in the active worker set.")
            return target if target.phase is WorkerPhase.READY else None
        ready = self._ready()
        cap = self._state.config.lb_requests_per_worker
        if target is not None and target in ready and target.inflight < cap:
            return target
        if not ready:
            return None
        least = min(w.inflight for w in ready)
        candidates = [w for w in ready if w.inflight == least]
        self._turn += 1  # ties go round-robin, so requests spread over idle workers
        return candidates[self._turn % len(candidates)]

    def _require_load_balancer(self) -> None:
        if not self._state.config.load_balancer:
            raise Problem(404, "This endpoint is a queue endpoint; use /v2/{endpoint_id}/run (or its OpenAI route).")

    # --- relaying

    async def _forward(self, request: Request, worker: Worker, path: str, *, body: bytes) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream_request = self._http.build_request(
            request.method,
            f"http://127.0.0.1:{worker.http_port}/{path}",
            params=str(request.query_params),
            headers=headers,
            content=body,
            timeout=httpx.Timeout(connect=5.0, read=_PROCESSING_TIMEOUT_S, write=30.0, pool=5.0),
        )
        worker.inflight += 1
        try:
            upstream = await self._http.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            self._done(worker)
            return JSONResponse(
                {"error": f"The worker could not be reached ({type(exc).__name__})."},
                status_code=502,
                headers={WORKER_ID_HEADER: worker.id},
            )
        answer_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        answer_headers[WORKER_ID_HEADER] = worker.id
        return _Relay(upstream, answer_headers, on_close=lambda: self._done(worker))

    def _done(self, worker: Worker) -> None:
        worker.inflight = max(0, worker.inflight - 1)
        self._state.workers.changed.notify()
        self._state.board.queue_changed.notify()  # the scaler sees the load drop


class _Relay(StreamingResponse):
    """The worker's bytes as they come; however it ends (done, client gone) the worker's request
    is closed and `on_close` runs."""

    def __init__(self, upstream: httpx.Response, headers: dict[str, str], *, on_close: Callable[[], None]) -> None:
        super().__init__(upstream.aiter_raw(), status_code=upstream.status_code, headers=headers)
        self._upstream = upstream
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._upstream.aclose()
            self._on_close()
