"""Workers you can diagnose: a worker image that crash-loops on start, injected in the local endpoint.

Real local endpoint, real worker processes (the injected fault makes each one print a traceback
and exit during start); the MCP tools read it through the endpoint's admin API, as `pete up` does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from pete_mcp.app import build_app
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.settings import Settings
from pete_mcp.faces.dashboard import dashboard_face
from pete_mcp.gateway import build_core
from pete_mcp.local.localpod import LocalPod, LocalPodConfig
from pete_mcp.ops.workers import WorkerExitInfo, WorkerInfo, WorkerReport, diagnose
from pete_mcp.routing.providers.runpod import RunPodProvider
from pete_mcp.runpod import EndpointHealth
from tests.support.localpod import running_localpod
from tests.support.mcp import connect
from tests.support.runpod_stack import runpod_client_for
from tests.support.standins import serving

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def arm_crash_loop(pod: LocalPod) -> None:
    headers = {"Authorization": f"Bearer {pod.api_key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{pod.admin_url}/faults", json={"crash_on_start": {}}, headers=headers)
    assert response.status_code == 200 and response.json()["start_crashes"], response.text


async def test_the_admin_api_shows_a_crash_loop_and_the_crashed_workers_logs(
    localpod_config: Callable[..., LocalPodConfig],
):
    config = localpod_config(min_workers=1, max_workers=1, restart_backoff_max_s=0.5)
    async with running_localpod(config, ready=0) as pod, httpx.AsyncClient(timeout=10) as http:
        headers = {"Authorization": f"Bearer {pod.api_key}"}
        await arm_crash_loop(pod)
        await http.post(
            f"{pod.admin_url}/kill-worker", json={"worker_id": pod.state.workers.all()[0].id}, headers=headers
        )
        listing: dict[str, Any] = {}
        with anyio.fail_after(30):
            while len([e for e in listing.get("recent_exits", []) if e["before_ready"]]) < 2:
                await anyio.sleep(0.1)
                listing = (await http.get(f"{pod.admin_url}/workers", headers=headers)).json()
        crashed = next(e for e in listing["recent_exits"] if e["before_ready"])
        assert crashed["exit_code"] == 1 and not crashed["intended"]
        assert listing["early_deaths"] >= 2 and listing["max_workers"] == 1
        logs = (await http.get(f"{pod.admin_url}/workers/{crashed['id']}/logs?lines=50", headers=headers)).json()
        unknown = await http.get(f"{pod.admin_url}/workers/w99-nobody/logs", headers=headers)
        refused = await http.get(f"{pod.admin_url}/workers")
    assert logs["live"] is False and any("injected fault crash_on_start" in line for line in logs["lines"])
    assert any(line.startswith("Traceback") for line in logs["lines"])
    assert unknown.status_code == 404 and refused.status_code == 401


async def test_get_job_and_list_workers_report_a_crash_loop_and_worker_logs_show_the_crash(
    tmp_path: Path, localpod_config: Callable[..., LocalPodConfig]
):
    config = localpod_config(min_workers=0, max_workers=1, restart_backoff_max_s=0.5)
    spec = ModelSpec("jamie", (Route("runpod", "tiny"),), 2048, "Jamie", None)
    async with running_localpod(config) as pod, httpx.AsyncClient(timeout=30) as http:
        await arm_crash_loop(pod)
        provider = RunPodProvider(runpod_client_for(pod, http, queue_check_s=120), use_openai_route=False)
        settings = Settings(  # pyright: ignore[reportCallIssue]
            data_dir=tmp_path / "data", local_api_key=pod.api_key, mcp_token="t0ken"
        )
        core = build_core(
            settings, http=http, providers={"runpod": provider}, registry=ModelRegistry({"jamie": spec}, "jamie")
        )
        async with core, connect(core, "legacy") as client:
            first = await client.call_tool("run_prompt", {"prompt": "hello", "max_tokens": 4, "time_budget_s": 1})
            pending = first.structured_content or {}
            assert pending["status"] == "waiting", pending
            workers: dict[str, Any] = {}
            with anyio.fail_after(30):
                while (workers.get("diagnosis") or {}).get("kind") != "crash_loop":
                    await anyio.sleep(0.2)
                    workers = (await client.call_tool("list_workers", {})).structured_content or {}
            hint = (
                (await client.call_tool("get_job", {"job_id": pending["job_id"], "wait_s": 0})).structured_content or {}
            )["hint"]
            crashed = workers["diagnosis"]["worker_id"]
            logs = (await client.call_tool("worker_logs", {"worker_id": crashed, "lines": 20})).structured_content or {}
            missing = await client.call_tool("worker_logs", {"worker_id": "w99-nobody"})
            app = build_app(core, faces=[dashboard_face(core, services=False)], manage_core=False)  # entered above
            async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as page:
                api = (await page.get("/api/workers")).json()
                refused = await page.get(f"/api/workers/{crashed}/logs")
                api_logs = await page.get(
                    f"/api/workers/{crashed}/logs?lines=20", headers={"Authorization": "Bearer t0ken"}
                )
                api_missing = await page.get("/api/workers/w99-nobody/logs", headers={"Authorization": "Bearer t0ken"})
            await client.call_tool("cancel_job", {"job_id": pending["job_id"]})
    assert workers["source"] == "local" and workers["max_workers"] == 1
    assert len([e for e in workers["recent_exits"] if e["before_ready"]]) >= 2
    assert "crash-looping" in hint and "rollback" in hint
    assert "worker_logs worker_id='w" in hint  # the newest crashed worker (the loop goes on meanwhile)
    assert "cold start" not in hint  # the old hint read this as warming up
    assert any("injected fault crash_on_start" in line for line in logs["lines"])
    assert missing.is_error and "list_workers" in missing.content[0].text  # type: ignore[union-attr]
    # The dashboard reads the same: the listing open, the logs behind the token.
    assert api["diagnosis"]["kind"] == "crash_loop" and api["source"] == "local"
    assert refused.status_code == 401 and api_missing.status_code == 404
    assert any("injected fault crash_on_start" in line for line in api_logs.json()["lines"])


async def test_list_workers_on_a_healthy_endpoint_shows_the_worker_and_no_diagnosis_to_act_on(
    tmp_path: Path, localpod_config: Callable[..., LocalPodConfig]
):
    config = localpod_config(min_workers=1, max_workers=2)
    spec = ModelSpec("jamie", (Route("runpod", "tiny"),), 2048, "Jamie", None)
    async with running_localpod(config) as pod, httpx.AsyncClient(timeout=30) as http:
        provider = RunPodProvider(runpod_client_for(pod, http), use_openai_route=False)
        settings = Settings(data_dir=tmp_path / "data", local_api_key=pod.api_key)  # pyright: ignore[reportCallIssue]
        core = build_core(
            settings, http=http, providers={"runpod": provider}, registry=ModelRegistry({"jamie": spec}, "jamie")
        )
        async with core, connect(core, "auto") as client:
            workers = (await client.call_tool("list_workers", {})).structured_content or {}
    assert [w["state"] for w in workers["workers"]] == ["idle"]
    worker = workers["workers"][0]
    assert worker["restarts"] == 0 and worker["jobs_done"] == 0 and worker["up_since"] > 0
    assert workers["diagnosis"]["kind"] == "ok" and workers["recent_exits"] == []


def test_the_diagnosis_tells_a_crash_loop_from_capacity_and_a_cold_start():
    now = 1_000.0
    crash = WorkerExitInfo("w2", now - 5, 1, "exited with code 1", before_ready=True, intended=False)
    crashes = (crash, WorkerExitInfo("w1", now - 20, 1, "exited with code 1", before_ready=True, intended=False))
    idle_health = EndpointHealth.model_validate({"jobs": {"inQueue": 3}, "workers": {}})
    looping = diagnose(WorkerReport("local", exits=crashes, max_workers=2, health=idle_health), now=now)
    assert looping.kind == "crash_loop" and looping.worker_id == "w2" and "roll back" in looping.advice
    # A worker that came up after the crashes ends the loop: the old exits no longer count.
    recovered = WorkerReport(
        "local", workers=(WorkerInfo("w3", "idle", up_since=now - 1),), exits=crashes, max_workers=2
    )
    assert diagnose(recovered, EndpointHealth.model_validate({"workers": {"idle": 1}}), now=now).kind == "ok"
    full = EndpointHealth.model_validate({"jobs": {"inQueue": 4}, "workers": {"running": 2}})
    busy = WorkerReport("runpod", workers=(WorkerInfo("a", "running"), WorkerInfo("b", "running")), max_workers=2)
    capacity = diagnose(busy, full, now=now)
    assert capacity.kind == "capacity" and "max workers" in capacity.advice
    cold = diagnose(WorkerReport("runpod", max_workers=2), idle_health, now=now)
    assert cold.kind == "cold_start" and cold.advice.startswith("Wait")
    sick = WorkerReport("runpod", workers=(WorkerInfo("c", "unhealthy"),), max_workers=2)
    assert diagnose(sick, idle_health, now=now).kind == "unhealthy"
