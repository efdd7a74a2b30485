"""RunPod's management REST API v2 for one serverless endpoint: read it, update it, watch a rollout.

Why not the public endpoint client: deploys go to another host (`api.runpod.io/v2`, not
`api.runpod.ai`) with other shapes (shared/reference/runpod.md §4): `PATCH /serverless/{id}`
creates a new release when the image or env changes; `GET .../releases` and
`GET .../workers` (`isStale`) say when every worker runs it. Errors are RFC 9457 problem
documents; we turn them into Pete's errors with a hint. The API key never enters a message.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import anyio
import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pete_mcp.core import (
    AuthError,
    ConfigError,
    DeployError,
    InputError,
    NotFound,
    ProviderUnavailable,
    Settings,
    iter_sse_data,
)

M = TypeVar("M", bound=BaseModel)

__all__ = ["Release", "Releases", "Rollout", "RunPodRest", "RunPodWorker", "Workers", "rest_from_settings"]


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class Rollout(_Wire):
    in_progress: bool = Field(False, alias="inProgress")
    workers_on_latest: int = Field(0, alias="workersOnLatest")
    workers_total: int = Field(0, alias="workersTotal")
    percent_on_latest: float = Field(0.0, alias="percentOnLatest")


class Release(_Wire):
    id: str = ""
    version: int = 0
    source: str = ""
    worker_count: int = Field(0, alias="workerCount")
    created_at: str = Field("", alias="createdAt")
    diff: list[dict[str, Any]] = Field(default_factory=list)


class Releases(_Wire):
    endpoint_version: int | None = Field(None, alias="endpointVersion")
    rollout: Rollout = Field(default_factory=lambda: Rollout.model_validate({}))
    releases: list[Release] = Field(default_factory=list)


class RunPodWorker(_Wire):
    id: str
    status: str = ""
    is_stale: bool = Field(False, alias="isStale")
    version: int | None = None
    image: str | None = None
    uptime_seconds: float | None = Field(None, alias="uptimeSeconds")
    started_at: str | None = Field(None, alias="startedAt")
    gpu_type_id: str | None = Field(None, alias="gpuTypeId")


class Workers(_Wire):
    workers: list[RunPodWorker] = Field(default_factory=list)
    summary: dict[str, int] = Field(default_factory=dict)
    endpoint_version: int | None = Field(None, alias="endpointVersion")

    @property
    def stale(self) -> list[RunPodWorker]:
        return [w for w in self.workers if w.is_stale]


class RunPodRest:
    """`{base_url}/serverless/{endpoint_id}` and its releases and workers, with a Bearer key."""

    def __init__(
        self, http: httpx.AsyncClient, *, base_url: str, endpoint_id: str, api_key: str, timeout_s: float = 15.0
    ) -> None:
        if not endpoint_id or "/" in endpoint_id:
            raise ConfigError(f"RUNPOD_ENDPOINT_ID must be a RunPod endpoint id, got {endpoint_id!r}.")
        self.endpoint_id = endpoint_id
        self._http = http
        self._url = f"{base_url.rstrip('/')}/serverless/{endpoint_id}"
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._timeout = httpx.Timeout(timeout_s, connect=5.0)

    def __repr__(self) -> str:
        return f"RunPodRest(endpoint_id={self.endpoint_id!r})"

    async def get_endpoint(self) -> dict[str, Any]:
        """`GET /serverless/{id}`: the endpoint, with its current `image` and `env`."""
        return await self._json("GET", "")

    async def update_endpoint(self, changes: dict[str, Any]) -> dict[str, Any]:
        """`PATCH /serverless/{id}` with only the fields to change; returns the updated endpoint."""
        return await self._json("PATCH", "", body=changes)

    async def releases(self) -> Releases:
        return self._parse(Releases, await self._json("GET", "/releases"), "/releases")

    async def workers(self) -> Workers:
        return self._parse(Workers, await self._json("GET", "/workers"), "/workers")

    async def worker_logs(self, worker_id: str, *, lines: int = 100, wait_s: float = 3.0) -> list[dict[str, Any]]:
        """`GET /serverless/{id}/workers/{workerId}/logs`: the log lines RunPod sends within `wait_s`.

        The route is a server-sent event stream of `{"source", "line", "ts"}` that stays open
        for new lines, so this reads what arrives in `wait_s` (or until `lines` came) and
        keeps the last `lines`.
        """
        if not worker_id or "/" in worker_id:
            raise InputError(f"{worker_id!r} is not a RunPod worker id.")
        what = "GET /serverless/{id}/workers/{workerId}/logs"
        got: list[dict[str, Any]] = []
        headers = {**self._headers, "Accept": "text/event-stream"}
        try:
            with anyio.move_on_after(wait_s):
                async with self._http.stream(
                    "GET", f"{self._url}/workers/{worker_id}/logs", headers=headers, timeout=self._timeout
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise _problem(response, what)
                    async for data in iter_sse_data(response.aiter_bytes()):
                        try:
                            event = json.loads(data)
                        except ValueError:
                            event = {"line": data}
                        got.append(event if isinstance(event, dict) else {"line": str(event)})
                        if len(got) >= lines:
                            break
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"RunPod REST cannot be reached for {what} ({type(exc).__name__}).", provider="runpod"
            ) from exc
        return got[-lines:]

    async def _json(self, method: str, path: str, *, body: dict[str, Any] | None = None) -> dict[str, Any]:
        what = f"{method} /serverless/{{id}}{path}"
        try:
            response = await self._http.request(
                method, self._url + path, json=body, headers=self._headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"RunPod REST did not answer {what} in time.", provider="runpod") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"RunPod REST cannot be reached ({type(exc).__name__}).",
                provider="runpod",
                hint="Check RUNPOD_REST_URL and the network.",
            ) from exc
        if response.status_code >= 400:
            raise _problem(response, what)
        try:
            data = response.json()
        except ValueError as exc:
            raise DeployError(f"RunPod REST answered {what} with something that is not JSON.") from exc
        if not isinstance(data, dict):
            raise DeployError(f"RunPod REST answered {what} with a JSON {type(data).__name__}, not an object.")
        return data

    @staticmethod
    def _parse(model: type[M], data: dict[str, Any], what: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise DeployError(f"RunPod REST {what} has an unexpected shape: {exc.error_count()} problem(s).") from exc


def _problem(response: httpx.Response, what: str) -> Exception:
    """Map an RFC 9457 problem (`{title, status, detail}`) to Pete's error tree."""
    detail = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            detail = str(body.get("detail") or body.get("title") or body.get("message") or "")[:300]
    except ValueError:
        detail = response.text[:300]
    code = response.status_code
    suffix = f": {detail}" if detail else "."
    if code == 401:
        return AuthError(f"RunPod REST refused the API key (401) on {what}.", hint="Check RUNPOD_API_KEY.")
    if code == 403:
        return AuthError(
            f"RunPod REST: the API key may not change this endpoint (403){suffix}",
            hint="Give RUNPOD_API_KEY read/write access to serverless endpoints.",
        )
    if code == 404:
        return NotFound(f"RunPod has no endpoint {what} (404).", hint="Check RUNPOD_ENDPOINT_ID.")
    if code in (400, 422):
        return InputError(f"RunPod REST rejected {what} ({code}){suffix}")
    if code == 429:
        wait = response.headers.get("Retry-After")
        return ProviderUnavailable(
            f"RunPod REST rate-limited {what} (429).",
            provider="runpod",
            hint=f"Wait {wait} s and try again." if wait else "Wait a minute and try again.",
        )
    return DeployError(f"RunPod REST failed {what} ({code}){suffix}")


def rest_from_settings(settings: Settings, http: httpx.AsyncClient) -> RunPodRest:
    """The REST client for the configured endpoint.

    Raises:
        ConfigError: RUNPOD_API_KEY or RUNPOD_ENDPOINT_ID is not set.
    """
    if settings.runpod_api_key is None or not settings.runpod_endpoint_id:
        raise ConfigError(
            "Deploys need RunPod credentials: set RUNPOD_API_KEY and RUNPOD_ENDPOINT_ID "
            "(the local endpoint runs whatever is checked out; it has nothing to deploy)."
        )
    return RunPodRest(
        http,
        base_url=settings.runpod_rest_url,
        endpoint_id=settings.runpod_endpoint_id,
        api_key=settings.runpod_api_key.get_secret_value(),
    )
