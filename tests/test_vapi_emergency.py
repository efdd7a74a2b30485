"""The emergency layer: hazards route to on-call at once, without the model; look-alikes do not."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import pytest

from pete_vapi.emergency import detect_hazard
from pete_vapi.escalation import LOGGED_LINE
from tests.support.scripted import ScriptedProvider
from tests.support.vapi_stack import assert_vapi_stream, chat_body, fixture, vapi_stack

HAZARDS = [
    ("I smell gas in my kitchen", "gas"),
    ("There's a gas leak by the stove!", "gas"),
    ("it smells like rotten eggs in the hallway", "gas"),
    ("Our carbon monoxide alarm is going off", "carbon_monoxide"),
    ("the C.O. detector is beeping and I feel dizzy", "carbon_monoxide"),
    ("There's a fire in the hallway", "fire"),
    ("I can smell smoke coming from upstairs", "fire"),
    ("the smoke alarm is going off and I see smoke", "fire"),
    ("My apartment is flooding", "flood"),
    ("a pipe burst in the bathroom", "flood"),
    ("water is pouring through the ceiling", "flood"),
    ("the sewage is backing up into the tub", "flood"),
    ("The heat is out and it's freezing in here", "no_heat"),
    ("no heat and it's 20 degrees", "no_heat"),
    ("the furnace died and I have a newborn", "no_heat"),
    ("the outlet is sparking", "electrical"),
    ("there are exposed wires hanging in the hallway", "electrical"),
    ("I got shocked by the light switch", "electrical"),
    ("No, I smell gas in the kitchen", "gas"),
    ("no the pipe burst", "flood"),
    ("it's not a drill there is a fire", "fire"),
    ("someone broke into my apartment", "intruder"),
    ("we're stuck in the elevator", "elevator"),
    ("my neighbor collapsed and isn't breathing", "medical"),
]

LOOK_ALIKES = [
    "I got my gas bill and it's too high",
    "where's the nearest gas station",
    "I smelled gas earlier but it's gone now",
    "I don't smell gas anymore",
    "can I have a fire pit on the balcony",
    "we had a fire drill today",
    "the smoke detector keeps chirping",
    "I need a new battery for the smoke alarm",
    "can you replace the carbon monoxide detector batteries",
    "do I need flood insurance",
    "my inbox is flooded with emails",
    "there's a slow drip under the sink",
    "the heat is working fine",
    "the heater is broken but it's warm out",
    "no heat issues, just a question about rent",
    "how do I turn on the heat",
    "the outlet doesn't work",
    "the light switch is loose",
    "my car needs a spark plug",
]


@pytest.mark.parametrize(("words", "category"), HAZARDS)
def test_each_hazard_is_recognised(words: str, category: str) -> None:
    hazard = detect_hazard(words)
    assert hazard is not None and hazard.category == category
    assert "on-call" in hazard.instruction


@pytest.mark.parametrize("words", LOOK_ALIKES)
def test_harmless_look_alikes_are_not_emergencies(words: str) -> None:
    assert detect_hazard(words) is None


@pytest.mark.anyio
@pytest.mark.parametrize(("words", "category"), [HAZARDS[0], HAZARDS[5], HAZARDS[8], HAZARDS[12]])
async def test_a_hazard_transfers_to_on_call_without_waiting_on_the_model(
    tmp_path: Path, words: str, category: str
) -> None:
    posted: list[dict[str, object]] = []

    def vapi_control(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(200, json={})

    cold = ScriptedProvider("cold", first_token_delay_s=60)  # a model that would never answer in time
    http = httpx.AsyncClient(transport=httpx.MockTransport(vapi_control))
    body = fixture("custom_llm_request")
    body["messages"][-1]["content"] = words
    async with vapi_stack(tmp_path, {"cold": cold}, http=http, on_call_number="+15550009999") as stack:
        async with stack.core.events.subscribe() as events:
            with anyio.fail_after(2):
                response = await stack.chat(body)
                escalated = await events.get()
                while escalated.kind != "emergency.escalated":
                    escalated = await events.get()
        await stack.face.background.wait_idle()
        emergencies = await stack.core.store.query("SELECT call_id, category, callback_number FROM emergencies")
        thread = await stack.core.store.thread("c-91")
    said = assert_vapi_stream(response.text)
    assert said.content == "" and said.finish_reason == "tool_calls"
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in said.tool_calls] == [
        ("transfer_call_tool", {"destination": "+15550009999"})  # the name VAPI gave the transfer tool
    ]
    assert cold.seen == []  # the model was never asked
    assert posted and posted[0]["type"] == "say" and "on-call" in str(posted[0]["content"])
    assert escalated.data == {"call_id": "c-91", "category": category}
    assert emergencies == [{"call_id": "c-91", "category": category, "callback_number": "+15551234567"}]
    assert thread[-4]["content"] == words and thread[-1]["tool_calls"][0]["function"]["name"] == "transfer_call_tool"
    # No pager is configured here: Jamie says it is logged, never that anyone was paged.
    assert posted[-1] == {"type": "say", "content": LOGGED_LINE, "endCallAfterSpoken": False}
    assert "paged" not in thread[-1]["content"] and "nobody" not in thread[-1]["content"]


@pytest.mark.anyio
async def test_without_a_transfer_tool_in_the_request_the_builtin_name_is_used(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        response = await stack.chat(chat_body(("user", "There is smoke coming from the oven!")))
    said = assert_vapi_stream(response.text)
    assert [c["function"]["name"] for c in said.tool_calls] == ["transferCall"]


@pytest.mark.anyio
async def test_a_look_alike_goes_to_the_model(tmp_path: Path) -> None:
    provider = ScriptedProvider("p", words=("Your gas bill comes from the utility.",))
    async with vapi_stack(tmp_path, {"p": provider}) as stack:
        response = await stack.chat(chat_body(("user", "Why is my gas bill so high?")))
        emergencies = await stack.core.store.query("SELECT 1 FROM emergencies")
    said = assert_vapi_stream(response.text)
    assert (said.content, said.finish_reason) == ("Your gas bill comes from the utility.", "stop")
    assert len(provider.seen) == 1 and emergencies == []


@pytest.mark.anyio
async def test_only_the_newest_user_words_are_checked(tmp_path: Path) -> None:
    provider = ScriptedProvider("p")
    async with vapi_stack(tmp_path, {"p": provider}) as stack:
        await stack.chat(chat_body(("user", "Never mind the smell of gas, it was the stove knob.")))
        second = await stack.chat(
            chat_body(
                ("user", "Never mind the smell of gas, it was the stove knob."),
                ("assistant", "Thanks for letting me know."),
                ("user", "Also, when is rent due?"),
            )
        )
    assert assert_vapi_stream(second.text).finish_reason == "stop"
