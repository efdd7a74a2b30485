"""`pete doctor` and the MCP `health` tool cost nothing: against a cold RunPod endpoint they send no job.

The endpoint is a stand-in for RunPod's public API (an external service) that reports no worker
at all (scaled to zero) and counts every request; a job is any `/run`, `/runsync` or `/openai/*`.
Only the explicit probe (`--probe`, `probe=true`) may create one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pete_mcp.cli.main import main
from pete_mcp.core.models import ModelRegistry, ModelSpec
from pete_mcp.core.models import Route as ModelRoute
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import build_core
from pete_mcp.routing.providers.runpod import RunPodProvider
from pete_mcp.runpod.client import RunPodClient
from tests.support.mcp import connect
from tests.support.standins import serving

pytestmark = pytest.mark.anyio

ENDPOINT, KEY = "ep-cold", "rp-key"
JOB_ROUTES = ("run", "runsync", "openai")


@dataclass
class ColdEndpoint:
    """RunPod scaled to zero: /health says no worker; a job would sit in the queue (and bill a cold start)."""

    paths: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> list[str]:
        return [p for p in self.paths if p.split("/")[3] in JOB_ROUTES]

    def app(self) -> Starlette:
        async def any_route(request: Request) -> JSONResponse:
            self.paths.append(request.url.path)
            op = request.path_params["op"].split("/")[0]
            if op == "health":
                workers = dict.fromkeys(("idle", "initializing", "ready", "running", "throttled", "unhealthy"), 0)
                jobs = {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0}
                return JSONResponse({"jobs": jobs, "workers": workers})
            if op in ("stream", "status", "cancel"):  # a probe's job: let it end (as if cancelled) at once
                return JSONResponse({"id": "job", "status": "CANCELLED", "stream": []})
            return JSONResponse({"id": f"job-{len(self.paths)}", "status": "IN_QUEUE"})

        return Starlette(routes=[Route("/v2/{ep}/{op:path}", any_route, methods=["GET", "POST"])])


def cold_core(tmp_path: Path, endpoint: ColdEndpoint) -> Any:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=endpoint.app()))
    client = RunPodClient(http, base_url="http://runpod/v2", endpoint_id=ENDPOINT, api_key=KEY)
    spec = ModelSpec("jamie", (ModelRoute("runpod", "peteollama:jamie-fixed"),), 8192)
    settings = Settings(data_dir=tmp_path, runpod_api_key=KEY, runpod_endpoint_id=ENDPOINT)
    return build_core(
        settings,
        http=http,
        providers={"runpod": RunPodProvider(client, use_openai_route=True)},
        registry=ModelRegistry({"jamie": spec}, "jamie"),
    )


async def test_pete_doctor_reads_a_cold_endpoint_without_sending_a_job(tmp_path: Path) -> None:
    endpoint = ColdEndpoint()
    async with serving(endpoint.app()) as url:
        env = {
            "RUNPOD_API_KEY": KEY,
            "RUNPOD_ENDPOINT_ID": ENDPOINT,
            "RUNPOD_BASE_URL": f"{url}/v2",
            "DATA_DIR": str(tmp_path),
            "KEEPWARM_HOURS": "mon-sun 00:00-24:00",  # doctor must not start keep-warm jobs either
            "PETE_URL": f"{url}/no-gateway",  # the stand-in answers 404 there: no gateway, so in-process
        }
        result = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(main, ["doctor"], env=env))
    assert "runpod_workers" in result.output and "scaled to zero" in result.output, result.output
    assert "not probed" in result.output
    assert "no gateway answered" in result.stderr
    assert any(p.endswith("/health") for p in endpoint.paths)
    assert endpoint.jobs == []


async def test_the_health_tool_costs_nothing_unless_asked_to_probe(tmp_path: Path) -> None:
    endpoint = ColdEndpoint()
    async with cold_core(tmp_path, endpoint) as core, connect(core, "auto") as client:
        free = await client.call_tool("health", {})
        assert endpoint.jobs == []
        tools = {t.name: t for t in (await client.list_tools()).tools}
        probe_doc = tools["health"].input_schema["properties"]["probe"]["description"]
        assert "billed" in probe_doc and tools["health"].input_schema["properties"]["probe"]["default"] is False
        with anyio.fail_after(30):
            await client.call_tool("health", {"probe": True})
    assert free.structured_content is not None
    checks = {c["name"]: c for c in free.structured_content["checks"]}
    assert "not probed" in checks["active_model"]["detail"]
    assert len(endpoint.jobs) == 1  # the probe: one job (by /run: a cold endpoint gets the cancellable path)
