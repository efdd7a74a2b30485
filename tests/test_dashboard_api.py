"""The dashboard face over HTTP: snapshot, Prometheus, SSE events, models, health and the token-guarded actions.

The app runs under uvicorn on a loopback port in the test's event loop (SSE needs a real
stream); the core uses scripted providers, since the model itself is not what is tested here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from prometheus_client.parser import text_string_to_metric_families

from pete_mcp.app import build_app
from pete_mcp.contract import Message
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.settings import Settings
from pete_mcp.faces.dashboard import dashboard_face
from pete_mcp.faces.mcp.server import build_mcp_server
from pete_mcp.gateway import ChatTurn, Core, build_core
from tests.support.mcp import standin_deployer
from tests.support.runpod_rest_standin import RunPodStandIn
from tests.support.scripted import ScriptedProvider
from tests.support.standins import serving

pytestmark = pytest.mark.anyio

TOKEN = "dash-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_core(tmp_path: Path, *, token: str | None = TOKEN) -> Core:
    provider = ScriptedProvider("local", words=("Rent", " is", " due", "."))
    registry = ModelRegistry(
        {
            "jamie": ModelSpec("jamie", (Route("local", "smollm2"),), 2048, "Jamie"),
            "gemma": ModelSpec("gemma", (Route("local", "gemma3-270m"),), 2048, "Gemma"),
        },
        "jamie",
    )
    settings = Settings(data_dir=tmp_path, mcp_token=token, switch_budget_s=5)  # type: ignore[arg-type]
    return build_core(settings, providers={"local": provider}, registry=registry)


@asynccontextmanager
async def dashboard(core: Core, **face_options: Any) -> AsyncIterator[httpx.AsyncClient]:
    face_options.setdefault("services", False)
    app = build_app(core, faces=[dashboard_face(core, **face_options)])
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield http


async def eventually(read: Callable[[], Awaitable[str]], expected: str, timeout_s: float = 5.0) -> None:
    """Poll `read` until its text contains `expected` (state that a background task changes)."""
    with anyio.fail_after(timeout_s):
        while expected not in await read():  # noqa: ASYNC110 - no event to wait on from outside the app
            await anyio.sleep(0.02)


async def deploy_status(core: Core) -> str:
    rows = await core.store.query("SELECT status FROM deploys ORDER BY id DESC LIMIT 1")
    return rows[0]["status"] if rows else ""


async def log_text(http: httpx.AsyncClient) -> str:
    return json.dumps((await http.get("/api/logs", headers=AUTH)).json())


async def provider_names(http: httpx.AsyncClient) -> str:
    return " ".join(p["name"] for p in (await http.get("/api/metrics")).json()["providers"])


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


async def test_api_metrics_and_the_mcp_resource_are_the_same_snapshot(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    async with dashboard(core) as http:
        await core.complete(ChatTurn([Message(role="user", content="hi")]))
        over_http = (await http.get("/api/metrics")).json()
        async with Client(build_mcp_server(core)) as mcp:
            resource = await mcp.read_resource("pete://metrics/live")
        over_mcp = json.loads(resource.contents[0].text)  # type: ignore[union-attr]
    assert over_http == over_mcp == core.metrics.snapshot()
    assert over_http["totals"]["requests"] == 1 and over_http["models"][0]["alias"] == "jamie"


async def test_prometheus_exposition_parses(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    async with dashboard(core) as http:
        await core.complete(ChatTurn([Message(role="user", content="hi")]))
        response = await http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["pete_requests"].samples[0].labels == {"provider": "local", "model": "smollm2", "outcome": "ok"}
    assert families["pete_ttft_seconds"].type == "histogram"


async def test_events_stream_core_events_as_sse(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    async with dashboard(core) as http, http.stream("GET", "/api/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        assert await anext(lines) == "retry: 1000"  # the stream is open and subscribed
        core.events.publish("call.started", call_id="call-9")
        with anyio.fail_after(5):
            line = await anext(lines)
            while not line.startswith("data: "):
                line = await anext(lines)
        event = json.loads(line[6:])
    assert event["kind"] == "call.started" and event["data"] == {"call_id": "call-9"}


async def test_models_lists_every_alias_and_marks_the_active_one(tmp_path: Path) -> None:
    async with dashboard(make_core(tmp_path)) as http:
        body = (await http.get("/api/models")).json()
    assert body["active"] == "jamie"
    assert [(m["alias"], m["active"]) for m in body["models"]] == [("jamie", True), ("gemma", False)]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/switch", {"model": "gemma"}),
        ("POST", "/api/prompt", {"prompt": "hi"}),
        ("POST", "/api/deploy", {"image": "registry.example/worker:2.0.0"}),
        ("GET", "/api/logs", None),
    ],
)
async def test_actions_without_the_token_are_refused(tmp_path: Path, method: str, path: str, body: Any) -> None:
    core = make_core(tmp_path)
    async with dashboard(core) as http:
        missing = await http.request(method, path, json=body)
        wrong = await http.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "MCP_TOKEN" in missing.json()["error"]["message"]
    assert core.active_alias == "jamie" and core.metrics.snapshot()["totals"]["requests"] == 0


async def test_actions_are_off_while_no_token_is_configured(tmp_path: Path) -> None:
    core = make_core(tmp_path, token=None)
    async with dashboard(core) as http:
        response = await http.post("/api/switch", json={"model": "gemma"}, headers=AUTH)
    assert response.status_code == 403 and response.json()["error"]["code"] == "actions_disabled"
    assert core.active_alias == "jamie"


async def test_switch_with_the_token_changes_the_active_model(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    async with dashboard(core) as http:
        response = await http.post("/api/switch", json={"model": "gemma"}, headers=AUTH)
        unknown = await http.post("/api/switch", json={"model": "nope"}, headers=AUTH)
        bad = await http.post("/api/switch", content=b"{", headers=AUTH)
    assert response.status_code == 200 and response.json()["active"] == "gemma"
    assert core.active_alias == "gemma"
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
    assert bad.status_code == 400


async def test_prompt_streams_the_answer_then_a_summary(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    async with (
        dashboard(core) as http,
        http.stream("POST", "/api/prompt", json={"prompt": "When is rent due?"}, headers=AUTH) as response,
    ):
        frames = [frame async for frame in sse_events(response)]
    deltas = [f["text"] for f in frames if f["type"] == "delta"]
    assert deltas == ["Rent", " is", " due", "."]
    assert frames[-1]["type"] == "done" and frames[-1]["alias"] == "jamie" and frames[-1]["provider"] == "local"
    assert core.metrics.snapshot()["totals"]["requests"] == 1


async def test_prompt_for_an_unknown_model_is_a_404_before_any_stream(tmp_path: Path) -> None:
    async with dashboard(make_core(tmp_path)) as http:
        response = await http.post("/api/prompt", json={"prompt": "hi", "model": "nope"}, headers=AUTH)
    assert response.status_code == 404 and response.headers["content-type"] == "application/json"


async def test_deploy_without_runpod_credentials_is_501_with_the_reason(tmp_path: Path) -> None:
    async with dashboard(make_core(tmp_path)) as http:
        response = await http.post("/api/deploy", json={"image": "registry.example/worker:2.0.0"}, headers=AUTH)
    assert response.status_code == 501
    assert "RUNPOD_API_KEY" in response.json()["error"]["message"]


async def test_deploy_starts_a_rollout_that_is_recorded(tmp_path: Path, runpod_standin: RunPodStandIn) -> None:
    core = make_core(tmp_path)
    image = "registry.example/pete-worker:2.0.0"
    async with dashboard(core, deployer=standin_deployer(core, runpod_standin)) as http:
        unpinned = await http.post("/api/deploy", json={"image": "registry.example/w:latest"}, headers=AUTH)
        response = await http.post("/api/deploy", json={"image": image}, headers=AUTH)
        await eventually(lambda: deploy_status(core), "done")  # the rollout is followed in the face's task group
    assert unpinned.status_code == 400 and "latest" in unpinned.json()["error"]["message"]
    assert response.status_code == 202 and response.json()["image"] == image
    assert runpod_standin.state.endpoint["image"] == image


async def test_logs_show_recent_log_lines_and_events(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    async with dashboard(core) as http:
        logging.getLogger("pete_mcp.test").warning("the boiler in unit 4 is fixed")
        await http.post("/api/switch", json={"model": "gemma"}, headers=AUTH)
        await eventually(lambda: log_text(http), "model.switched")  # events reach the ring through a subscriber
        entries = (await http.get("/api/logs", headers=AUTH)).json()["entries"]
    assert any(e["message"] == "the boiler in unit 4 is fixed" and e["level"] == "WARNING" for e in entries)


async def test_health_reports_checks_without_waking_a_gpu(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    provider = core.router.providers["local"]
    assert isinstance(provider, ScriptedProvider)
    async with dashboard(core) as http:
        body = (await http.get("/api/health")).json()
    assert body["counted"] >= 1 and 0 <= body["passed"] <= body["counted"]
    assert {c["name"] for c in body["checks"]} >= {"storage", "active_model"}
    assert provider.seen == []  # no probe prompt was sent


async def test_the_dashboard_page_is_served_at_the_root(tmp_path: Path) -> None:
    async with dashboard(make_core(tmp_path)) as http:
        page = await http.get("/")
        api = await http.get("/api/metrics")
    assert page.status_code == 200 and "<title>Pete" in page.text
    assert api.headers["content-type"] == "application/json"


async def test_the_face_runs_the_metrics_service_and_alert_engine(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    async with dashboard(core, services=True) as http:
        assert core.metrics.service_running
        await eventually(lambda: provider_names(http), "local")  # the first health poll runs in the background
    assert not core.metrics.service_running
