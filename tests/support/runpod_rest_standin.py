"""A stand-in for one RunPod serverless endpoint's management REST v2 and its public health/purge routes.

It follows the published shapes (shared/reference/runpod.md §1.7, §4): `GET/PATCH
/v2/serverless/{id}` (PATCH changes only the fields sent; `image`/`env` create a new
release), `GET .../releases` (`endpointVersion`, `rollout{inProgress, workersOnLatest,
workersTotal, percentOnLatest}`, `releases[]` newest first with `diff`), `GET .../workers`
(`workers[]` with `isStale`, `summary`), RFC 9457 problem bodies on errors; and the public
`GET /v2/{id}/health` and `POST /v2/{id}/purge-queue`. A rollout advances one stale worker
per `/releases` poll, as workers cycle one at a time. It records every request it gets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ENDPOINT_ID = "ep-standin"
API_KEY = "rp-standin-key"
FIRST_IMAGE = "registry.example/pete-worker:1.0.0"


@dataclass
class StandInWorker:
    id: str
    version: int
    image: str
    status: str = "IDLE"


@dataclass
class RunPodStandInState:
    endpoint_id: str = ENDPOINT_ID
    api_key: str = API_KEY
    endpoint: dict[str, Any] = field(
        default_factory=lambda: {
            "id": ENDPOINT_ID,
            "name": "pete",
            "image": FIRST_IMAGE,
            "env": {"MODEL_SERVER": "ollama"},
            "workers": {"min": 0, "max": 3, "idleTimeout": 10},
            "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
            "timeout": 300000,
            "flashboot": "OFF",
            "dataCenterIds": [],
            "networkVolumes": [],
            "createdAt": "2026-08-01T00:00:00Z",
        }
    )
    version: int = 1
    workers: list[StandInWorker] = field(
        default_factory=lambda: [StandInWorker(f"w-{i}", 1, FIRST_IMAGE) for i in range(2)]
    )
    releases: list[dict[str, Any]] = field(default_factory=list)
    in_queue: int = 0
    in_progress: int = 0
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    fail_patch_with: int | None = None
    rate_limit_releases: bool = False

    @property
    def patches(self) -> list[dict[str, Any]]:
        return [body for method, path, body in self.requests if method == "PATCH"]

    def stale(self) -> list[StandInWorker]:
        return [w for w in self.workers if w.version != self.version]


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {"title": title, "status": status, "detail": detail}, status_code=status, media_type="application/problem+json"
    )


def build_runpod_standin(state: RunPodStandInState) -> Starlette:
    def authorised(request: Request, *, raw_allowed: bool) -> bool:
        header = request.headers.get("authorization", "")
        return header == f"Bearer {state.api_key}" or (raw_allowed and header == state.api_key)

    async def record(request: Request) -> Any:
        body = await request.body()
        parsed = json.loads(body) if body else None
        state.requests.append((request.method, request.url.path, parsed))
        return parsed

    def known(request: Request) -> bool:
        return request.path_params["id"] == state.endpoint_id

    async def endpoint(request: Request) -> JSONResponse:
        body = await record(request)
        if not authorised(request, raw_allowed=False):
            return _problem(401, "Unauthorized", "Missing or invalid API key.")
        if not known(request):
            return _problem(404, "Not Found", f"endpoint {request.path_params['id']} not found")
        if request.method == "PATCH":
            if state.fail_patch_with is not None:
                return _problem(state.fail_patch_with, "Error", "update failed")
            if not isinstance(body, dict) or not body:
                return _problem(400, "Bad Request", "the body must be a JSON object with fields to change")
            diff = [
                {
                    "field": "template.imageName" if key == "image" else f"template.{key}",
                    "old": state.endpoint.get(key),
                    "new": value,
                }
                for key, value in body.items()
                if key in ("image", "env") and state.endpoint.get(key) != value
            ]
            state.endpoint.update(body)
            if diff:
                state.version += 1
                state.releases.insert(
                    0,
                    {
                        "id": f"rel-{state.version}",
                        "version": state.version,
                        "source": "MANUAL",
                        "workerCount": len(state.workers),
                        "createdAt": "2026-08-02T00:00:00Z",
                        "diff": diff,
                    },
                )
        return JSONResponse(state.endpoint)

    async def releases(request: Request) -> JSONResponse:
        await record(request)
        if not authorised(request, raw_allowed=False):
            return _problem(401, "Unauthorized", "Missing or invalid API key.")
        if state.rate_limit_releases:
            response = _problem(429, "Too Many Requests", "rate limit exceeded")
            response.headers["Retry-After"] = "12"
            return response
        if not known(request):
            return _problem(404, "Not Found", "endpoint not found")
        stale = state.stale()
        if stale:  # one worker cycles onto the new release per poll
            stale[0].version, stale[0].image = state.version, state.endpoint["image"]
        total = len(state.workers)
        on_latest = total - len(state.stale())
        return JSONResponse(
            {
                "endpointVersion": state.version,
                "rollout": {
                    "inProgress": on_latest < total,
                    "workersOnLatest": on_latest,
                    "workersTotal": total,
                    "percentOnLatest": round(100 * on_latest / total, 1) if total else 100,
                },
                "releases": state.releases,
            }
        )

    async def workers(request: Request) -> JSONResponse:
        await record(request)
        if not authorised(request, raw_allowed=False):
            return _problem(401, "Unauthorized", "Missing or invalid API key.")
        summary = {"running": 0, "idle": 0, "initializing": 0, "throttled": 0, "unhealthy": 0}
        for w in state.workers:
            summary[w.status.lower()] = summary.get(w.status.lower(), 0) + 1
        return JSONResponse(
            {
                "workers": [
                    {
                        "id": w.id,
                        "status": w.status,
                        "isStale": w.version != state.version,
                        "version": w.version,
                        "gpuCount": 1,
                        "image": w.image,
                        "uptimeSeconds": 60,
                        "gpuTypeId": "NVIDIA RTX A4000",
                        "dataCenterId": "EU-RO-1",
                        "startedAt": "2026-08-02T00:00:00Z",
                    }
                    for w in state.workers
                ],
                "summary": {**summary, "total": len(state.workers)},
                "endpointVersion": state.version,
            }
        )

    async def health(request: Request) -> JSONResponse:
        await record(request)
        if not authorised(request, raw_allowed=True):
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        idle = sum(w.status == "IDLE" for w in state.workers)
        running = sum(w.status == "RUNNING" for w in state.workers)
        initializing = sum(w.status == "INITIALIZING" for w in state.workers)
        return JSONResponse(
            {
                "jobs": {
                    "completed": 7,
                    "failed": 0,
                    "inProgress": state.in_progress,
                    "inQueue": state.in_queue,
                    "retried": 0,
                },
                "workers": {
                    "idle": idle,
                    "initializing": initializing,
                    "ready": 0,
                    "running": running,
                    "throttled": 0,
                    "unhealthy": 0,
                },
            }
        )

    async def purge(request: Request) -> JSONResponse:
        await record(request)
        if not authorised(request, raw_allowed=True):
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        removed, state.in_queue = state.in_queue, 0
        return JSONResponse({"removed": removed, "status": "completed"})

    return Starlette(
        routes=[
            Route("/v2/serverless/{id}", endpoint, methods=["GET", "PATCH"]),
            Route("/v2/serverless/{id}/releases", releases, methods=["GET"]),
            Route("/v2/serverless/{id}/workers", workers, methods=["GET"]),
            Route("/v2/{id}/health", health, methods=["GET"]),
            Route("/v2/{id}/purge-queue", purge, methods=["POST"]),
        ]
    )


@dataclass
class RunPodStandIn:
    state: RunPodStandInState
    app: Starlette
    base_url: str = "http://runpod-standin/v2"

    def http(self) -> httpx.AsyncClient:
        """An httpx client whose requests reach the stand-in in-process."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://runpod-standin")


@pytest.fixture
def runpod_standin() -> Iterator[RunPodStandIn]:
    state = RunPodStandInState()
    yield RunPodStandIn(state, build_runpod_standin(state))
