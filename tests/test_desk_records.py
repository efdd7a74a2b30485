"""The desk's records read back and closed: `/api/desk/*`, `/api/escalations`, MCP tools and resources.

One real core and SQLite store; Jamie fills the desk through the VAPI face, the dashboard face
serves the API (httpx over `ASGITransport`), and the MCP server is reached with the SDK's
in-memory client, so all three faces read the same records.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mcp import Client

from pete_mcp.app import build_app
from pete_mcp.core import Settings, Store
from pete_mcp.core.desk_records import mask_caller
from pete_mcp.core.property_desk import PropertyDesk
from pete_mcp.core.tenant_directory import DEMO_TENANTS, upsert_tenants
from pete_mcp.faces.dashboard import dashboard_face
from pete_mcp.faces.mcp.server import build_mcp_server
from pete_mcp.gateway import Core, build_core
from pete_vapi import vapi_face
from tests.support.scripted import ScriptedProvider
from tests.support.vapi_stack import fixture, jamie_registry

pytestmark = pytest.mark.anyio

TOKEN = "desk-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Desk:
    core: Core
    http: httpx.AsyncClient


@asynccontextmanager
async def desk_app(tmp_path: Path) -> AsyncIterator[Desk]:
    settings = Settings.model_validate({"data_dir": tmp_path, "hedging": False, "mcp_token": TOKEN})
    vapi_control = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200, json={})))
    core = build_core(settings, http=vapi_control, providers={"p": ScriptedProvider("p")}, registry=jamie_registry("p"))
    vapi = vapi_face(core)
    app = build_app(core, faces=[vapi, dashboard_face(core, services=False)])
    async with app.router.lifespan_context(app):
        await upsert_tenants(core.store, DEMO_TENANTS)
        desk = PropertyDesk(core.store)
        await desk.create_maintenance_request(
            call_id="c-1", unit="4B", category="plumbing", description="sink leaks", callback_number="+15551234567"
        )
        await desk.take_message(call_id="c-1", name="Dana", number="+15551234567", message="Package at the door")
        await desk.schedule_callback(call_id="c-2", name="Sam", number="+15552345678", reason="lease question")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8765") as http:
            hazard = fixture("custom_llm_request")
            hazard["messages"][-1]["content"] = "There's a fire in the hallway"
            await http.post("/vapi/chat/completions", json=hazard)
            await vapi.background.wait_idle()  # the page runs beside the call
            yield Desk(core, http)


async def test_each_kind_lists_its_open_records_with_the_caller_masked(tmp_path: Path) -> None:
    async with desk_app(tmp_path) as desk:
        listed = {
            k: (await desk.http.get(f"/api/desk/{k}", headers=AUTH)).json()
            for k in ("tickets", "messages", "callbacks", "emergencies")
        }
    ticket = listed["tickets"]["items"][0]
    assert listed["tickets"]["kind"] == "tickets"
    assert (ticket["kind"], ticket["status"], ticket["unit"], ticket["category"]) == (
        "tickets",
        "open",
        "4B",
        "plumbing",
    )
    assert ticket["caller"] == "+1•••••4567" and ticket["tenant"] == "Dana Ruiz"
    assert listed["messages"]["items"][0]["summary"] == "Package at the door"
    assert listed["callbacks"]["items"][0]["tenant"] == "Sam Okafor"
    emergency = listed["emergencies"]["items"][0]
    assert (emergency["category"], emergency["urgency"], emergency["call_id"]) == ("fire", "emergency", "c-91")
    assert "15551234567" not in json.dumps(listed)
    keys = {"id", "kind", "status", "created_at", "closed_at", "call_id", "caller", "tenant", "unit", "category"}
    assert keys | {"urgency", "summary", "closed_by", "close_note"} == set(ticket)


async def test_closing_a_record_moves_it_from_open_to_closed_with_the_note(tmp_path: Path) -> None:
    async with desk_app(tmp_path) as desk:
        ticket_id = (await desk.http.get("/api/desk/tickets", headers=AUTH)).json()["items"][0]["id"]
        closed = await desk.http.post(
            f"/api/desk/tickets/{ticket_id}/close", json={"note": "washer replaced"}, headers=AUTH
        )
        still_open = (await desk.http.get("/api/desk/tickets", headers=AUTH)).json()["items"]
        done = (await desk.http.get("/api/desk/tickets?status=closed", headers=AUTH)).json()["items"]
    assert closed.status_code == 200
    body = closed.json()
    assert (body["status"], body["close_note"], body["closed_by"]) == ("closed", "washer replaced", "dashboard")
    assert body["closed_at"] is not None
    assert still_open == [] and [d["id"] for d in done] == [ticket_id]


async def test_desk_routes_need_the_dashboard_token(tmp_path: Path) -> None:
    async with desk_app(tmp_path) as desk:
        listing = await desk.http.get("/api/desk/tickets")
        escalations = await desk.http.get("/api/escalations")
        close = await desk.http.post("/api/desk/tickets/1001/close", json={"note": "x"})
        wrong = await desk.http.post("/api/desk/tickets/1001/close", json={}, headers={"Authorization": "Bearer nope"})
    assert {listing.status_code, escalations.status_code, close.status_code, wrong.status_code} == {401}
    assert "Dana" not in listing.text and "sink" not in listing.text


async def test_unknown_kinds_and_ids_are_404s_that_name_them(tmp_path: Path) -> None:
    async with desk_app(tmp_path) as desk:
        kind = await desk.http.get("/api/desk/invoices", headers=AUTH)
        missing = await desk.http.post("/api/desk/messages/999/close", json={"note": ""}, headers=AUTH)
        bad_status = await desk.http.get("/api/desk/tickets?status=maybe", headers=AUTH)
        bad_note = await desk.http.post("/api/desk/tickets/1001/close", json={"note": 5}, headers=AUTH)
    assert kind.status_code == 404 and "invoices" in kind.json()["error"]["message"]
    assert missing.status_code == 404 and "999" in missing.json()["error"]["message"]
    assert bad_status.status_code == 400 and "status" in bad_status.json()["error"]["message"]
    assert bad_note.status_code == 400 and "note" in bad_note.json()["error"]["message"]


async def test_escalations_show_whether_a_person_was_paged_and_each_attempt(tmp_path: Path) -> None:
    async with desk_app(tmp_path) as desk:
        items = (await desk.http.get("/api/escalations", headers=AUTH)).json()["items"]
    assert len(items) == 1
    item = items[0]
    assert (item["call_id"], item["category"], item["paged"]) == ("c-91", "fire", False)  # no sink configured
    assert [a["sink"] for a in item["attempts"]] == ["mcp"]
    assert set(item["attempts"][0]) == {"sink", "at", "ok", "status", "error"}


async def test_mcp_tools_list_and_close_the_same_records(tmp_path: Path) -> None:
    async with desk_app(tmp_path) as desk, Client(build_mcp_server(desk.core), raise_exceptions=True) as client:
        listed = await client.call_tool("list_desk", {"kind": "callbacks"})
        callback_id = listed.structured_content["items"][0]["id"]
        closed = await client.call_tool(
            "close_desk_item", {"kind": "callbacks", "id": callback_id, "note": "called back"}
        )
        resource = await client.read_resource("pete://desk/callbacks")
        pages = await client.read_resource("pete://escalations")
        over_http = (await desk.http.get("/api/desk/callbacks?status=closed", headers=AUTH)).json()["items"]
        missing = await client.call_tool("close_desk_item", {"kind": "callbacks", "id": 4242, "note": ""})
    assert missing.is_error and "no callback with id 4242" in str(missing.content[0])
    assert closed.structured_content is not None
    assert closed.structured_content["status"] == "closed" and closed.structured_content["closed_by"] == "mcp"
    assert json.loads(resource.contents[0].text)["items"] == []
    assert json.loads(pages.contents[0].text)["items"][0]["category"] == "fire"
    assert [i["close_note"] for i in over_http] == ["called back"]


def test_a_database_of_the_release_before_gains_the_desk_columns_and_loses_the_demo_tenants(tmp_path: Path) -> None:
    import sqlite3

    from pete_mcp.core.storage.migrations import MIGRATIONS

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:  # the schema as the release before migrations shipped it
        conn.executescript(MIGRATIONS[0].sql)
        conn.execute("INSERT INTO emergencies(call_id, category, summary, created_at) VALUES ('c', 'gas', 's', 0)")
        conn.execute("INSERT INTO tenants(phone, name, unit, property) VALUES ('+15559990000', 'Real', '1', 'X')")
    for _ in range(2):  # opening twice is harmless
        store = Store(path)
        store.open()
        store.close()
    with sqlite3.connect(path) as conn:
        for table, column in [("tenants", "email"), ("emergencies", "status"), ("office_messages", "closed_by")]:
            assert column in {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}, (table, column)
        assert conn.execute("SELECT status FROM emergencies").fetchone() == ("open",)
        assert conn.execute("SELECT name FROM tenants").fetchall() == [("Real",)]  # the demo rows are gone


@pytest.mark.parametrize(
    ("number", "masked"), [("+15551234567", "+1•••••4567"), ("(555) 123-4567", "•••••4567"), ("", ""), ("12", "•••12")]
)
def test_callers_numbers_keep_only_the_country_code_and_last_four_digits(number: str, masked: str) -> None:
    assert mask_caller(number) == masked
