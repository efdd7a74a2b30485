"""Jamie's tools: the `<tool_call>` line a model writes, the desk behind it, and VAPI's built-ins."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.property_desk import PropertyDesk
from pete_mcp.core.provider import Completion, ProviderHealth, StreamEvent, TextDelta
from pete_mcp.core.settings import Settings
from pete_mcp.core.storage import engine_from_settings
from pete_mcp.core.store import Store
from pete_mcp.core.tenant_directory import DEMO_TENANTS, upsert_tenants
from pete_vapi.tool_protocol import ParsedCall, SpokenText, ToolCallScanner, parse_call
from pete_vapi.tools import JamieTools, ToolContext, builtin_name
from tests.support.vapi_stack import assert_vapi_stream, chat_body, fixture, vapi_stack

TICKET_CALL = (
    '<tool_call>{"name": "create_maintenance_request", "arguments": {"unit": "4B", "category": "plumbing", '
    '"description": "kitchen sink leaks", "urgency": "urgent", "permission_to_enter": "yes"}}</tool_call>'
)


@dataclass
class ReplyScript:
    """A model stand-in whose n-th reply is `replies[n]`, streamed in `pieces`-character deltas."""

    replies: list[str]
    name: str = "script"
    pieces: int = 7
    seen: list[list[Message]] = field(default_factory=list)

    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        self.seen.append(list(messages))
        text = self.replies[min(len(self.seen) - 1, len(self.replies) - 1)]
        for i in range(0, len(text), self.pieces):
            yield TextDelta(text[i : i + self.pieces])
        yield Completion(text=text, provider=self.name, model=model)

    async def warm(self, model: str) -> float:
        return 0.0

    async def health(self) -> ProviderHealth:
        return ProviderHealth(True, "script")

    async def cancel(self, job_id: str) -> None:
        return None


# --- the scanner -------------------------------------------------------------------------------
def scan(text: str, size: int) -> list[SpokenText | ParsedCall]:
    scanner, out = ToolCallScanner(), []
    for i in range(0, len(text), size):
        out += scanner.feed(text[i : i + size])
    return out + scanner.close()


@pytest.mark.parametrize("size", [1, 3, 11, 1000])
def test_markup_split_anywhere_is_found_and_never_spoken(size: int) -> None:
    items = scan(f"Let me file that. {TICKET_CALL} Done.", size)
    spoken = "".join(i.text for i in items if isinstance(i, SpokenText))
    calls = [i for i in items if isinstance(i, ParsedCall)]
    assert spoken == "Let me file that.  Done."
    assert [c.name for c in calls] == ["create_maintenance_request"] and calls[0].arguments["unit"] == "4B"


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from(["Sure", " ", "<", "tool", "_call>", "</tool_call>", TICKET_CALL, "{", "ok."]), max_size=12
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_any_split_of_a_reply_scans_as_the_whole_does(parts: list[str], cuts: list[int]) -> None:
    """However the stream cuts a reply into deltas, the caller hears the same words and the same calls run."""
    text = "".join(parts)
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    scanner, items = ToolCallScanner(), []
    for a, b in itertools.pairwise(bounds):
        items += scanner.feed(text[a:b])
    items += scanner.close()
    whole = ToolCallScanner()
    expected = whole.feed(text) + whole.close()

    def said(found: list[SpokenText | ParsedCall]) -> str:
        return "".join(i.text for i in found if isinstance(i, SpokenText))

    assert said(items) == said(expected)
    assert [i for i in items if isinstance(i, ParsedCall)] == [i for i in expected if isinstance(i, ParsedCall)]


def test_text_that_only_looks_like_markup_is_spoken() -> None:
    assert "".join(i.text for i in scan("Use the <b> key and <tool", 2) if isinstance(i, SpokenText)) == (
        "Use the <b> key and <tool"
    )


def test_a_bare_json_reply_is_a_call_and_other_json_is_not_spoken() -> None:
    assert scan('{"name": "end_call", "arguments": "{}"}', 4) == [ParsedCall("end_call", {})]
    assert scan('{"oops": 1}', 4) == []


def test_parse_call_accepts_parameters_and_rejects_garbage() -> None:
    assert parse_call('{"name": "lookup_tenant", "parameters": {"phone": "1"}}') == ParsedCall(
        "lookup_tenant", {"phone": "1"}
    )
    assert parse_call("not json") is None and parse_call('{"arguments": {}}') is None


def test_builtin_names_come_from_the_request_tools() -> None:
    tools = fixture("custom_llm_request")["tools"]
    assert builtin_name(tools, "transfer_call") == "transfer_call_tool"
    assert builtin_name(tools, "end_call") == "end_call_tool"
    assert builtin_name(None, "transfer_call") == "transferCall" and builtin_name([], "end_call") == "endCall"


# --- the desk ----------------------------------------------------------------------------------
@pytest.fixture
async def desk(db_settings: dict[str, Any]) -> AsyncIterator[PropertyDesk]:
    """The desk on each engine (SQLite, PostgreSQL)."""
    store = Store(engine_from_settings(Settings(**db_settings)))
    store.open()
    await upsert_tenants(store, DEMO_TENANTS)
    try:
        yield PropertyDesk(store)
    finally:
        store.close()


@pytest.mark.anyio
async def test_one_issue_reported_twice_in_a_call_is_one_ticket(desk: PropertyDesk) -> None:
    first = await desk.create_maintenance_request(
        call_id="c1", unit="4B", category="Plumbing", description="sink leaks", urgency="routine"
    )
    again = await desk.create_maintenance_request(
        call_id="c1", unit="4b", category="leak", description="water under the cabinet", urgency="urgent"
    )
    other_call = await desk.create_maintenance_request(call_id="c2", unit="4B", category="plumbing", description="x")
    tickets = await desk.tickets()
    assert first.new and not again.new and other_call.new
    assert first.ticket == again.ticket == 1001 and other_call.ticket == 1002
    assert again.urgency == "urgent" and again.description == "sink leaks / water under the cabinet"
    assert len(tickets) == 2


@pytest.mark.anyio
async def test_a_ticket_needs_a_unit_and_a_description(desk: PropertyDesk) -> None:
    outcome = await JamieTools(desk).run("create_maintenance_request", {"description": "leak"}, ToolContext("c1"))
    assert outcome.result is None and outcome.error == "create_maintenance_request needs the unit number."


@pytest.mark.anyio
@pytest.mark.parametrize("number", ["+15551234567", "(555) 123-4567", "555.123.4567", "15551234567"])
async def test_tenants_are_found_by_caller_number_in_any_format(desk: PropertyDesk, number: str) -> None:
    outcome = await JamieTools(desk).run("lookup_tenant", {}, ToolContext("c1", caller_number=number))
    assert outcome.result == "Dana Ruiz, unit 4B at Maple Court."


@pytest.mark.anyio
async def test_messages_and_callbacks_are_kept_once_per_call(desk: PropertyDesk) -> None:
    tools, ctx = JamieTools(desk), ToolContext("c1", caller_number="+15552345678")
    for _ in range(2):
        await tools.run("take_message", {"message": "Please fix the mailbox lock."}, ctx)
        await tools.run("schedule_callback", {"reason": "lease renewal", "preferred_time": "after 5pm"}, ctx)
    notes = await desk.office_messages()
    assert sorted((n["kind"], n["number"]) for n in notes) == [
        ("callback", "+15552345678"),
        ("message", "+15552345678"),
    ]


@pytest.mark.anyio
async def test_an_unknown_tool_is_an_error_line_not_an_exception(desk: PropertyDesk) -> None:
    outcome = await JamieTools(desk).run("order_pizza", {}, ToolContext("c1"))
    assert outcome.error is not None and "\n" not in outcome.text and "lookup_tenant" in outcome.error


# --- tools asked for by the model in a Custom LLM turn -----------------------------------------
@pytest.mark.anyio
async def test_a_model_tool_call_runs_in_the_gateway_and_the_model_answers_with_its_result(tmp_path: Path) -> None:
    model = ReplyScript([TICKET_CALL, "Done, your ticket number is 1001."])
    async with vapi_stack(tmp_path, {"script": model}) as stack:
        response = await stack.chat(chat_body(("user", "My kitchen sink in 4B leaks.")))
        tickets = await PropertyDesk(stack.core.store).tickets()
        thread = await stack.core.store.thread("call-1")
    said = assert_vapi_stream(response.text)
    assert (said.content, said.finish_reason) == ("Done, your ticket number is 1001.", "stop")
    assert [(t["ticket"], t["unit"], t["permission_to_enter"]) for t in tickets] == [(1001, "4B", 1)]
    assert tickets[0]["callback_number"] == "+15551234567"  # the caller's number by default
    tool_result = next(m for m in thread if m["role"] == "tool")
    assert tool_result["content"] == "Ticket 1001 created for unit 4B: plumbing, urgent."
    assert model.seen[1][-1].role == "tool"  # the second round saw the result


@pytest.mark.anyio
async def test_a_model_transfer_becomes_a_tool_call_delta_with_no_content(tmp_path: Path) -> None:
    model = ReplyScript(['<tool_call>{"name": "transfer_call", "arguments": {"destination": "office"}}</tool_call>'])
    body = chat_body(("user", "Can I talk to a person?"), tools=fixture("custom_llm_request")["tools"])
    async with vapi_stack(tmp_path, {"script": model}, office_number="+15550100100") as stack:
        response = await stack.chat(body)
    said = assert_vapi_stream(response.text)
    assert said.content == "" and said.finish_reason == "tool_calls"
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in said.tool_calls] == [
        ("transfer_call_tool", {"destination": "+15550100100"})
    ]


@pytest.mark.anyio
async def test_end_call_keeps_the_farewell_then_emits_the_end_call_tool(tmp_path: Path) -> None:
    model = ReplyScript(['Goodbye, have a nice evening! <tool_call>{"name": "end_call", "arguments": {}}</tool_call>'])
    body = chat_body(("user", "That's all, bye."), tools=fixture("custom_llm_request")["tools"])
    async with vapi_stack(tmp_path, {"script": model}) as stack:
        response = await stack.chat(body)
    said = assert_vapi_stream(response.text)
    assert said.content.strip() == "Goodbye, have a nice evening!" and said.finish_reason == "tool_calls"
    assert [c["function"]["name"] for c in said.tool_calls] == ["end_call_tool"]


@pytest.mark.anyio
async def test_a_model_that_says_nothing_speakable_gets_a_repeat_request(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"script": ReplyScript(['{"not": "a call"}'])}) as stack:
        response = await stack.chat(chat_body(("user", "hmm")))
    assert assert_vapi_stream(response.text).content == "Sorry, could you say that again?"
