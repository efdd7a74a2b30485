"""Server messages at /vapi/webhook, from VAPI's published shapes (tests/fixtures/vapi)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from pete_mcp.core.property_desk import PropertyDesk
from tests.support.paced_provider import PacedProvider
from tests.support.scripted import ScriptedProvider
from tests.support.vapi_stack import FIXTURES, fixture, vapi_stack

pytestmark = pytest.mark.anyio

ALL_MESSAGES = sorted(p.stem for p in FIXTURES.glob("*.json") if p.stem != "custom_llm_request")


@pytest.mark.parametrize("name", ALL_MESSAGES)
async def test_every_published_message_type_gets_http_200(tmp_path: Path, name: str) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        response = await stack.webhook(fixture(name))
    assert response.status_code == 200 and isinstance(response.json(), dict)


async def test_assistant_request_answers_fast_with_jamie_on_our_custom_llm(tmp_path: Path) -> None:
    slow_gpu = PacedProvider("runpod", warm_delay_s=3.0)  # a cold start must not delay the reply
    settings: dict[str, Any] = {
        "public_url": "https://pete.example.com/",
        "vapi_auth": "secret",
        "vapi_secret": "s3cret",
    }
    async with vapi_stack(tmp_path, {"runpod": slow_gpu}, **settings) as stack:
        with anyio.fail_after(1.0):
            response = await stack.webhook(fixture("assistant_request"), headers={"x-vapi-secret": "s3cret"})
        with anyio.move_on_after(1.0):  # the warm-up runs in the background: wait for it to start
            await slow_gpu.warm_started.wait()
        warm_started = list(slow_gpu.warmed)
    reply = response.json()
    model = reply["assistant"]["model"]
    assert (model["provider"], model["url"], model["model"]) == (
        "custom-llm",
        "https://pete.example.com/vapi/llm",
        "jamie",
    )
    assert model["headers"] == {"X-Vapi-Secret": "s3cret"}
    assert "<tool_call>" in model["messages"][0]["content"]
    destinations = reply["assistant"]["model"]["tools"][0]["destinations"]
    assert [d["number"] for d in destinations] == ["+15550100999", "+15550100100"]
    assert "tool-calls" in reply["assistant"]["serverMessages"]
    assert reply["assistantOverrides"]["variableValues"] == {
        "tenantName": "Dana Ruiz",
        "unit": "4B",
        "property": "Maple Court",
    }
    assert warm_started == ["m"]  # the warm-up was started, and not awaited


async def test_assistant_request_without_public_url_points_at_the_url_it_was_called_on(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        reply = (await stack.webhook(fixture("assistant_request"))).json()
    assert reply["assistant"]["model"]["url"] == "http://127.0.0.1:8765/vapi/llm"
    assert "headers" not in reply["assistant"]["model"]


@pytest.mark.parametrize("name", ["tool_calls_string_args", "tool_calls_object_args"])
async def test_tool_calls_run_with_either_argument_encoding(tmp_path: Path, name: str) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        response = await stack.webhook(fixture(name))
        tickets = await PropertyDesk(stack.core.store).tickets()
    results = response.json()["results"]
    assert response.status_code == 200
    assert results[0]["name"] == "create_maintenance_request"
    assert results[0]["toolCallId"] in ("call_x7", "call_y8")
    assert results[0]["result"] == "Ticket 1001 created for unit 4B: plumbing, urgent."
    assert all("\n" not in r.get("result", "") for r in results)
    assert [(t["unit"], t["category"], t["urgency"], t["permission_to_enter"]) for t in tickets] == [
        ("4B", "plumbing", "urgent", 1)
    ]
    if name == "tool_calls_object_args":
        assert results[1] == {
            "name": "lookup_tenant",
            "toolCallId": "call_y9",
            "result": "Dana Ruiz, unit 4B at Maple Court.",
        }


async def test_legacy_duplicated_tool_calls_run_once(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        results = (await stack.webhook(fixture("tool_calls_legacy"))).json()["results"]
        notes = await PropertyDesk(stack.core.store).office_messages()
    assert [r["toolCallId"] for r in results] == ["call_z1"]
    assert [n["reason"] for n in notes] == ["Please call me about the lease renewal."]


async def test_a_redelivered_tool_call_returns_the_same_result_without_running_again(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        first = (await stack.webhook(fixture("tool_calls_string_args"))).json()
        second = (await stack.webhook(fixture("tool_calls_string_args"))).json()
        tickets = await PropertyDesk(stack.core.store).tickets()
    assert first == second and len(tickets) == 1


async def test_bad_tool_arguments_and_unknown_tools_are_errors_inside_http_200(tmp_path: Path) -> None:
    body = fixture("tool_calls_string_args")
    body["message"]["toolCallList"] = [
        {"id": "t1", "type": "function", "function": {"name": "create_maintenance_request", "arguments": "{unit: 4B"}},
        {"id": "t2", "type": "function", "function": {"name": "order_pizza", "arguments": "{}"}},
        {"id": "t3", "name": "lookup_tenant", "parameters": {"phone": "+15553456789"}},
    ]
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        response = await stack.webhook(body)
    results = response.json()["results"]
    assert response.status_code == 200
    assert [r["toolCallId"] for r in results] == ["t1", "t2", "t3"]
    assert "error" in results[0] and "error" in results[1] and "\n" not in results[0]["error"]
    # Another tenant's number (the caller is +15551234567): refused, without saying whether it is on file.
    assert results[2]["result"].startswith("Tenant details are only given for the number this call comes from")
    assert "Lee" not in results[2]["result"]


async def test_status_updates_track_live_calls_through_core_events(tmp_path: Path) -> None:
    provider = PacedProvider("p")
    async with vapi_stack(tmp_path, {"p": provider}) as stack:
        async with stack.core.events.subscribe() as events:
            await stack.webhook(fixture("status_update_in_progress"))
            await stack.webhook(fixture("status_update_in_progress"))  # VAPI re-fires in-progress
            live = stack.face.calls.live_count
            await stack.webhook(fixture("status_update_ended"))
            kinds = []
            with anyio.fail_after(1):
                while len(kinds) < 2:
                    event = await events.get()
                    if event.kind.startswith("call."):
                        kinds.append((event.kind, event.data["live_calls"]))
        await stack.face.background.wait_idle()
        call = await stack.face.calls.call("c-91")
    assert live == 1 and stack.face.calls.live_count == 0
    assert kinds == [("call.started", 1), ("call.ended", 0)]
    assert provider.warmed == ["m"]  # warmed once when the call started
    assert call is not None and (call["status"], call["ended_reason"]) == ("ended", "customer-ended-call")
    assert call["caller"] == "***4567"


async def test_end_of_call_report_is_stored_once_from_the_new_layout(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        for _ in range(2):  # delivered twice: at-least-once delivery
            assert (await stack.webhook(fixture("end_of_call_report"))).json() == {}
        call = await stack.face.calls.call("c-91")
        latencies = await stack.core.store.query("SELECT * FROM vapi_turn_latencies WHERE call_id = 'c-91'")
        ledger = await stack.core.store.query("SELECT * FROM vapi_server_messages WHERE type = 'end-of-call-report'")
    assert call is not None
    assert call["ended_reason"] == "customer-ended-call"
    assert call["summary"] == "Tenant in 4B reported a sink leak; ticket 1001 created."
    assert call["transcript"].startswith("AI: Thanks for calling Acme.")
    assert call["recording_url"].startswith("https://storage.vapi.ai/c-91-recording.wav")
    assert call["duration_s"] == pytest.approx(295.0) and call["cost"] == pytest.approx(0.42)
    assert [(r["idx"], r["model_ms"], r["turn_ms"]) for r in latencies] == [(0, 420, 1050), (1, 380, 990)]
    assert len(ledger) == 1


async def test_end_of_call_report_is_read_from_the_legacy_layout(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        await stack.webhook(fixture("end_of_call_report_legacy"))
        call = await stack.face.calls.call("c-92")
    assert call is not None
    assert (call["summary"], call["ended_reason"]) == ("Rent question; confirmed payment.", "assistant-ended-call")
    assert call["transcript"].startswith("AI: Thanks for calling.")
    assert call["recording_url"] == "https://storage.vapi.ai/c-92-recording.wav"
    assert call["duration_s"] == pytest.approx(61.5)


async def test_transfer_destination_is_the_office_unless_the_call_had_an_emergency(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        ordinary = (await stack.webhook(fixture("transfer_destination_request"))).json()
        await PropertyDesk(stack.core.store).escalate_emergency(call_id="c-91", category="gas", summary="gas smell")
        urgent = (await stack.webhook(fixture("transfer_destination_request"))).json()
    assert ordinary["destination"] == {"type": "number", "number": "+15550100100"}
    assert urgent["destination"] == {"type": "number", "number": "+15550100999"}


async def test_hang_is_published_for_alerting_and_interruptions_are_recorded(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        async with stack.core.events.subscribe() as events:
            await stack.webhook(fixture("hang"))
            event = await events.get()
        await stack.webhook(fixture("user_interrupted"))
        ledger = await stack.core.store.query("SELECT key FROM vapi_server_messages WHERE type = 'user-interrupted'")
    assert (event.kind, event.data) == ("call.hang", {"call_id": "c-91"})
    assert ledger == [{"key": "turn-3"}]


async def test_unknown_and_odd_messages_are_accepted_and_broken_json_gets_a_400(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        unknown = await stack.webhook(fixture("unknown_type"))
        garbage = await stack.client.post("/vapi/webhook", content=b"[1, 2")
        odd = await stack.webhook({"message": {"type": "tool-calls", "toolCallList": "not a list"}})
    assert (unknown.status_code, unknown.json()) == (200, {})
    assert odd.status_code == 200
    assert garbage.status_code == 400
    assert "not JSON" in garbage.json()["error"]["message"]
    assert "call.future-feature" in caplog.text
