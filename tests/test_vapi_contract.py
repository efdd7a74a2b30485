"""Dev-time contract check: our VAPI fixtures and replies against `vapi-server-sdk`'s per-type models.

The SDK stays off the runtime path (slow import, non-discriminated union, strict fields; see
vapi.md §4). Here each fixture is validated with its own per-type class, so a fixture that
drifts from VAPI's published schema fails. Shapes VAPI sends but the SDK's schema no longer
describes (object `arguments`, the legacy end-of-call layout) are checked to be rejected by
the SDK, so the runtime's leniency stays deliberate.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.scripted import ScriptedProvider
from tests.support.vapi_stack import fixture, vapi_stack

pytestmark = pytest.mark.slow

SDK_CLASS = {
    "assistant_request": "ServerMessageAssistantRequest",
    "tool_calls_string_args": "ServerMessageToolCalls",
    "status_update_in_progress": "ServerMessageStatusUpdate",
    "status_update_ended": "ServerMessageStatusUpdate",
    "end_of_call_report": "ServerMessageEndOfCallReport",
    "conversation_update": "ServerMessageConversationUpdate",
    "transcript": "ServerMessageTranscript",
    "speech_update": "ServerMessageSpeechUpdate",
    "hang": "ServerMessageHang",
    "user_interrupted": "ServerMessageUserInterrupted",
    "transfer_destination_request": "ServerMessageTransferDestinationRequest",
}
OUTSIDE_THE_SDK_SCHEMA = {
    "tool_calls_object_args": "ServerMessageToolCalls",
    "tool_calls_legacy": "ServerMessageToolCalls",
    "end_of_call_report_legacy": "ServerMessageEndOfCallReport",
}


def sdk_validate(class_name: str, payload: dict[str, Any]) -> Any:
    """Validate with the SDK's own converter (its field aliases are Fern metadata, not pydantic's)."""
    from vapi.core.pydantic_utilities import parse_obj_as

    module = importlib.import_module("vapi.types." + re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower())
    return parse_obj_as(getattr(module, class_name), payload)


def test_every_fixture_is_covered() -> None:
    names = {p.stem for p in (Path(__file__).parent / "fixtures" / "vapi").glob("*.json")}
    assert names == {*SDK_CLASS, *OUTSIDE_THE_SDK_SCHEMA, "unknown_type", "custom_llm_request"}


@pytest.mark.parametrize("name", sorted(SDK_CLASS))
def test_fixture_matches_the_sdk_model_for_its_type(name: str) -> None:
    message = fixture(name)["message"]
    parsed = sdk_validate(SDK_CLASS[name], message)
    assert parsed.type == message["type"]


@pytest.mark.parametrize("name", sorted(OUTSIDE_THE_SDK_SCHEMA))
def test_shapes_seen_on_real_calls_are_outside_the_sdk_schema(name: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        sdk_validate(OUTSIDE_THE_SDK_SCHEMA[name], fixture(name)["message"])


@pytest.mark.anyio
async def test_our_replies_match_the_sdk_reply_models(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}, public_url="https://pete.example.com") as stack:
        tools = (await stack.webhook(fixture("tool_calls_object_args"))).json()
        assistant = (await stack.webhook(fixture("assistant_request"))).json()
        transfer = (await stack.webhook(fixture("transfer_destination_request"))).json()
    parsed_tools = sdk_validate("ServerMessageResponseToolCalls", tools)
    assert [r.tool_call_id for r in parsed_tools.results] == ["call_y8", "call_y9"]
    parsed_assistant = sdk_validate("ServerMessageResponseAssistantRequest", assistant)
    assert parsed_assistant.assistant is not None
    assert parsed_assistant.assistant.model.url == "https://pete.example.com/vapi/llm"  # type: ignore[union-attr]
    sdk_validate("ServerMessageResponseTransferDestinationRequest", transfer)
