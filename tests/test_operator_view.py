"""What the operator sees (issue 16): live calls and their transcript, recent calls with their outcome,
jobs with cancel, models as they are, and `pete prompt` going through the running gateway.

The VAPI and dashboard faces share one real core and are driven over httpx (ASGITransport, or
uvicorn on loopback where a second process-like client is needed); the providers are scripted,
since the model is not what is tested here.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from pete_mcp.app import build_app
from pete_mcp.cli.prompt import _prompt  # pyright: ignore[reportPrivateUsage]
from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import Cancelled
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.property_desk import PropertyDesk
from pete_mcp.core.settings import Settings
from pete_mcp.core.tenant_directory import DEMO_TENANTS, upsert_tenants
from pete_mcp.faces.dashboard import dashboard_face
from pete_mcp.faces.mcp.server import build_mcp_server
from pete_mcp.gateway import ChatTurn, Core, build_core
from pete_vapi import vapi_face
from tests.support.scripted import ScriptedProvider
from tests.support.standins import serving
from tests.support.vapi_stack import JAMIE_PROMPT, chat_body, fixture, jamie_registry

pytestmark = pytest.mark.anyio

TOKEN = "operator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Desk:
    core: Core
    http: httpx.AsyncClient


@asynccontextmanager
async def operator_app(tmp_path: Path, provider: ScriptedProvider | None = None) -> AsyncIterator[Desk]:
    """The VAPI face and the dashboard face over one core (ASGITransport; no services)."""
    settings = Settings(data_dir=tmp_path, mcp_token=TOKEN, hedging=False)  # type: ignore[arg-type]
    provider = provider or ScriptedProvider("local")
    core = build_core(settings, providers={"local": provider}, registry=jamie_registry("local"))
    app = build_app(core, faces=[vapi_face(core), dashboard_face(core, services=False)])
    async with app.router.lifespan_context(app):
        await upsert_tenants(core.store, DEMO_TENANTS)  # callers the board can name
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield Desk(core, http)


async def test_a_call_under_way_shows_its_masked_caller_tenant_turns_and_a_growing_transcript(tmp_path: Path) -> None:
    async with operator_app(tmp_path) as desk:
        await desk.http.post("/vapi/chat/completions", json=chat_body(("user", "My cabinet door is loose, unit 4B")))
        first = (await desk.http.get("/api/calls")).json()
        await desk.http.post(
            "/vapi/chat/completions",
            json=chat_body(
                ("user", "My cabinet door is loose, unit 4B"),
                ("assistant", "Hello there."),
                ("user", "It is the kitchen one"),
            ),
        )
        call = (await desk.http.get("/api/calls/call-1")).json()
    [live] = first["live"]
    assert live["call_id"] == "call-1" and live["state"] == "listening"
    assert live["caller"] != "+15551234567" and live["caller"].endswith("4567")  # masked, last digits kept
    assert live["tenant"] == "unit 4B, Maple Court"  # the seeded tenant for that number
    assert (live["turns"], live["model"]) == (1, "jamie") and live["last_ttft_s"] is not None
    assert call["turns"] == 2
    assert [(line["role"], line["text"]) for line in call["transcript"]] == [
        ("caller", "My cabinet door is loose, unit 4B"),
        ("assistant", "Hello there."),
        ("caller", "It is the kitchen one"),
        ("assistant", "Hello there."),
    ]


async def test_a_call_line_reaches_the_event_stream_as_it_is_said(tmp_path: Path) -> None:
    async with operator_app(tmp_path) as desk, desk.core.events.subscribe() as sub:
        await desk.http.post("/vapi/chat/completions", json=chat_body(("user", "Is the office open?")))
        kinds: list[tuple[str, Any]] = []
        with anyio.fail_after(5):
            while ("call.said", "assistant") not in kinds:
                event = await sub.get()
                kinds.append((event.kind, event.data.get("role")))
    assert ("call.said", "caller") in kinds and ("call.state", None) in kinds


async def test_an_ended_call_is_listed_with_its_outcome_and_the_list_filters(tmp_path: Path) -> None:
    report = fixture("end_of_call_report")
    call_id = report["message"]["call"]["id"]
    async with operator_app(tmp_path) as desk:
        body = chat_body(("user", "My cabinet door is loose"), call_id=call_id)
        await desk.http.post("/vapi/chat/completions", json=body)
        await PropertyDesk(desk.core.store).create_maintenance_request(
            call_id=call_id, unit="4B", category="general", description="kitchen cabinet door loose"
        )
        assert (await desk.http.post("/vapi/webhook", json=report)).status_code == 200
        listed = (await desk.http.get("/api/calls")).json()
        answered_only = (await desk.http.get("/api/calls", params={"outcome": "answered"})).json()
        searched = (await desk.http.get("/api/calls", params={"q": "customer-ended"})).json()
        bad = await desk.http.get("/api/calls", params={"outcome": "exploded"})
        unknown = await desk.http.get("/api/calls/no-such-call")
    assert listed["live"] == []
    [ended] = listed["recent"]
    assert (ended["call_id"], ended["outcome"], ended["turns"]) == (call_id, "ticket opened", 1)
    assert ended["duration_s"] is not None and ended["ended_reason"] == "customer-ended-call"
    assert answered_only["recent"] == [] and [c["call_id"] for c in searched["recent"]] == [call_id]
    assert bad.status_code == 400 and "outcome" in bad.json()["error"]["message"]
    assert unknown.status_code == 404 and "no-such-call" in unknown.json()["error"]["message"]


async def test_the_calls_and_jobs_are_mcp_resources_too(tmp_path: Path) -> None:
    async with operator_app(tmp_path) as desk:
        await desk.http.post("/vapi/chat/completions", json=chat_body(("user", "hello")))
        async with Client(build_mcp_server(desk.core), raise_exceptions=True) as mcp:
            live = await mcp.read_resource("pete://calls/live")
            jobs = await mcp.read_resource("pete://jobs")
            one = await mcp.read_resource("pete://calls/call-1")
    assert '"call-1"' in live.contents[0].text  # type: ignore[union-attr]
    assert '"completed"' in jobs.contents[0].text  # type: ignore[union-attr]
    assert '"transcript"' in one.contents[0].text  # type: ignore[union-attr]


async def test_a_running_job_is_listed_newest_first_and_cancel_ends_it(tmp_path: Path) -> None:
    slow = ScriptedProvider("local", first_token_delay_s=30.0, job_prefix="rp")
    async with operator_app(tmp_path, slow) as desk, anyio.create_task_group() as tg:
        ended = anyio.Event()

        async def ask() -> None:
            with pytest.raises(Cancelled):
                await desk.core.complete(ChatTurn([Message(role="user", content="hi")], source="cli"))
            ended.set()

        tg.start_soon(ask)
        with anyio.fail_after(5):
            while not (active := (await desk.http.get("/api/jobs")).json()["active"]):  # noqa: ASYNC110 - read over HTTP
                await anyio.sleep(0.01)
        [job] = active
        assert (job["job_id"], job["alias"], job["provider"], job["status"]) == ("rp-1", "jamie", "local", "queued")
        refused = await desk.http.post(f"/api/jobs/{job['job_id']}/cancel")
        cancelled = await desk.http.post(f"/api/jobs/{job['job_id']}/cancel", headers=AUTH)
        missing = await desk.http.post("/api/jobs/rp-404/cancel", headers=AUTH)
        with anyio.fail_after(5):
            await ended.wait()
        after = (await desk.http.get("/api/jobs")).json()
    assert refused.status_code == 401
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"]["job_id"] == "rp-1"
    assert slow.cancelled == ["rp-1"]  # the provider was asked to cancel its job
    assert missing.status_code == 404 and "rp-404" in missing.json()["error"]["message"]
    assert after["active"] == [] and after["recent"][0]["status"] == "cancelled"


async def test_finished_jobs_keep_their_timings_tokens_and_source(tmp_path: Path) -> None:
    async with operator_app(tmp_path, ScriptedProvider("local", job_prefix="rp")) as desk:
        await desk.core.complete(ChatTurn([Message(role="user", content="hi")], options=ChatOptions(), source="mcp"))
        [done] = (await desk.http.get("/api/jobs")).json()["recent"]
    assert (done["job_id"], done["status"], done["source"]) == ("rp-1", "completed", "mcp")
    assert (done["input_tokens"], done["output_tokens"], done["ttft_s"]) == (3, 3, 0.01)


async def test_models_say_whether_they_can_be_served_here_and_switch_refuses_those_that_cannot(
    tmp_path: Path,
) -> None:
    registry = ModelRegistry(
        {
            "jamie": ModelSpec("jamie", (Route("local", "m"),), 2048, "Jamie", JAMIE_PROMPT),
            "llama3": ModelSpec("llama3", (Route("runpod", "llama3"),), 8192, "Llama 3 on RunPod"),
        },
        "jamie",
    )
    settings = Settings(data_dir=tmp_path, mcp_token=TOKEN)  # type: ignore[arg-type]
    core = build_core(settings, providers={"local": ScriptedProvider("local")}, registry=registry)
    app = build_app(core, faces=[dashboard_face(core, services=False)])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            models = {m["alias"]: m for m in (await http.get("/api/models")).json()["models"]}
        async with Client(build_mcp_server(core)) as mcp:
            listed = await mcp.call_tool("list_models", {})
            refused = await mcp.call_tool("switch_model", {"name": "llama3"})
    assert models["jamie"]["servable"] is True and models["jamie"]["where"] == "this machine"
    assert models["llama3"]["servable"] is False and "not configured" in models["llama3"]["unservable_reason"]
    assert listed.structured_content is not None
    assert {m["alias"]: m["servable"] for m in listed.structured_content["models"]} == {"jamie": True, "llama3": False}
    assert refused.is_error and "cannot be served" in str(refused.content)


async def run_cli_prompt(settings: Settings, text: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = await _prompt(settings, text, None, ChatOptions(max_tokens=16))
    return rc, out.getvalue(), err.getvalue()


async def test_pete_prompt_goes_through_the_running_gateway_and_shows_on_its_page(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, hedging=False)  # no MCP_TOKEN: the CLI uses the gateway's local token
    core = build_core(settings, providers={"local": ScriptedProvider("local")}, registry=jamie_registry("local"))
    async with serving(build_app(core, faces=[dashboard_face(core, services=False)])) as url:
        cli = Settings(data_dir=tmp_path, pete_url=url)
        first = await run_cli_prompt(cli, "My sink is leaking under the cabinet, unit 4B")
        second = await run_cli_prompt(cli, "My sink is leaking under the cabinet, unit 4B")
        async with httpx.AsyncClient(base_url=url) as http:
            snapshot = (await http.get("/api/metrics")).json()
            refused = await http.post("/api/prompt", json={"prompt": "hi"})  # the page itself still needs a token
    for rc, out, err in (first, second):
        assert rc == 0 and out == "Hello there."
        assert f"through the gateway at {url}" in err
    assert snapshot["requests"] == 2 and snapshot["last"]["source"] == "cli"
    assert refused.status_code == 403


async def test_pete_prompt_says_so_when_no_gateway_answers_and_runs_in_process(tmp_path: Path) -> None:
    with socket_closed_port() as port:
        cli = Settings(
            data_dir=tmp_path, pete_url=f"http://127.0.0.1:{port}", local_endpoint_port=port, runpod_timeout_s=2
        )
        with anyio.fail_after(60):
            rc, _out, err = await run_cli_prompt(cli, "hello")
    assert f"no gateway answered at http://127.0.0.1:{port}; running in-process" in err
    assert rc == 1 and "pete up" in err  # nothing local runs either, and it says how to start it


class socket_closed_port:
    """A loopback port nothing listens on (bound, then released)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        return None


async def test_a_new_callers_tenant_is_looked_up_after_the_reply_not_before_its_first_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The board's tenant is a store read no caller should wait for: it runs once the reply is out."""
    async with operator_app(tmp_path) as desk:
        said_before_lookup: list[list[str]] = []
        lookup = PropertyDesk.lookup_tenant

        async def watched_lookup(self: PropertyDesk, number: str) -> Any:
            call = desk.core.calls.get("call-1") or {}
            said_before_lookup.append([line["role"] for line in call.get("transcript", [])])
            return await lookup(self, number)

        monkeypatch.setattr(PropertyDesk, "lookup_tenant", watched_lookup)
        await desk.http.post("/vapi/chat/completions", json=chat_body(("user", "Is the office open today?")))
        await desk.http.post(
            "/vapi/chat/completions",
            json=chat_body(("user", "Is the office open today?"), ("assistant", "Hello there."), ("user", "Thanks")),
        )
        live = (await desk.http.get("/api/calls")).json()["live"]
    assert said_before_lookup == [["caller", "assistant"]]  # once per call, after Jamie's reply
    assert live[0]["tenant"] == "unit 4B, Maple Court"
