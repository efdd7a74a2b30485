"""The turn budget: late first tokens, broken and stalled models, and hang-ups all end well-formed.

Providers here are stand-ins implementing the provider protocol (a cold GPU that never
answers, a worker that dies mid-reply); the route, core and store are real.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.errors import ProviderUnavailable
from pete_mcp.core.provider import Completion, JobStarted, ProviderHealth, StreamEvent, TextDelta
from pete_mcp.gateway import ChatEvent, Reply
from pete_vapi.turn import TurnBudget, TurnClock, run_round
from tests.support.scripted import ScriptedProvider
from tests.support.standins import serving
from tests.support.vapi_stack import assert_vapi_stream, chat_body, eventually, read_frames, vapi_stack

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {"vapi_holding_after_s": 0.15, "vapi_answer_deadline_s": 0.6}
APOLOGY = "I'm sorry, I'm having trouble answering right now. Someone from our office will call you back shortly."
HOLD = "One moment while I check that."
CONTROL_URL = "https://vapi.test/c-1/control"


@dataclass
class StallingProvider:
    """Announces a job, says `words`, then goes silent forever (a worker that died mid-reply)."""

    name: str = "stalling"
    words: tuple[str, ...] = ()
    cancelled: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    calls: int = 0

    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        self.calls += 1
        job = f"job-{self.calls}"
        try:
            yield JobStarted(job)
            for word in self.words:
                yield TextDelta(word)
            await anyio.sleep_forever()
            yield Completion(text="", provider=self.name, model=model)  # pragma: no cover
        finally:
            self.closed.append(job)

    async def warm(self, model: str) -> float:
        return 0.0

    async def health(self) -> ProviderHealth:
        return ProviderHealth(True, "stalling")

    async def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)


def control_recorder() -> tuple[httpx.AsyncClient, list[dict[str, object]]]:
    """A client whose requests to VAPI's control URL are recorded (VAPI's side is not ours to run)."""
    posted: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["user-agent"].startswith("pete-vapi/")
        posted.append({"url": str(request.url), **json.loads(request.content)})
        return httpx.Response(200, json={})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), posted


async def wait_until_closed(provider: StallingProvider, job: str) -> None:
    await eventually(lambda: job in provider.closed)


async def test_a_cold_start_beyond_the_budget_holds_then_apologises_and_cancels_the_job(tmp_path: Path) -> None:
    cold = StallingProvider("cold")  # a RunPod cold start that outlasts the budget
    async with vapi_stack(tmp_path, {"cold": cold}, **FAST) as stack:
        with anyio.fail_after(5):
            response = await stack.chat(chat_body(("user", "Can I renew my lease?")))
        await stack.face.background.wait_idle()
        await wait_until_closed(cold, "job-1")  # closing the provider's stream is what cancels a RunPod job
        thread = await stack.thread("call-1")
        callbacks = await stack.core.store.query("SELECT number, reason FROM office_messages WHERE kind = 'callback'")
        turns = await stack.face.calls.turns("call-1")
    said = assert_vapi_stream(response.text)
    assert said.content == f"{HOLD} {APOLOGY}"
    assert said.finish_reason == "stop"
    assert thread[1:] == [("user", "Can I renew my lease?"), ("assistant", HOLD), ("assistant", APOLOGY)]
    assert callbacks and callbacks[0]["number"] == "+15551234567" and "late" in callbacks[0]["reason"]
    assert turns[0]["outcome"] == "late-apology" and turns[0]["held"] == 1
    assert turns[0]["first_content_ms"] < 400


async def test_a_late_first_token_is_bridged_through_the_control_url_once(tmp_path: Path) -> None:
    http, posted = control_recorder()
    slow = ScriptedProvider("slow", first_token_delay_s=0.4, words=("Your rent is due on the first.",))
    async with vapi_stack(tmp_path, {"slow": slow}, http=http, **FAST) as stack:
        body = chat_body(("user", "When is rent due?"))
        body["call"]["monitor"] = {"controlUrl": CONTROL_URL}
        response = await stack.chat(body)
        await stack.face.background.wait_idle()
    said = assert_vapi_stream(response.text)
    assert said.content == "Your rent is due on the first."  # the phrase went through the control URL instead
    assert posted == [{"url": CONTROL_URL, "type": "say", "content": HOLD, "endCallAfterSpoken": False}]


async def test_a_quick_answer_gets_no_holding_phrase(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}, **FAST) as stack:
        response = await stack.chat(chat_body(("user", "hi")))
        turns = await stack.face.calls.turns("call-1")
    assert assert_vapi_stream(response.text).content == "Hello there."
    assert turns[0]["outcome"] == "answer" and turns[0]["held"] == 0


async def test_a_model_error_before_the_first_token_becomes_a_spoken_apology(tmp_path: Path) -> None:
    broken = ScriptedProvider("broken", fail_before=ProviderUnavailable("no workers", provider="broken"))
    async with vapi_stack(tmp_path, {"broken": broken}, **FAST) as stack:
        response = await stack.chat(chat_body(("user", "My heater is noisy.")))
        thread = await stack.thread("call-1")
    assert response.status_code == 200
    said = assert_vapi_stream(response.text)
    assert (said.content, said.finish_reason) == (APOLOGY, "stop")
    assert thread[1:] == [("user", "My heater is noisy."), ("assistant", APOLOGY)]


async def test_a_worker_killed_mid_reply_keeps_what_was_said_and_apologises(tmp_path: Path) -> None:
    dying = ScriptedProvider("dying", words=("Sorry to hear that.", " I will"), fail_after=1)
    async with vapi_stack(tmp_path, {"dying": dying}, **FAST) as stack:
        response = await stack.chat(chat_body(("user", "My sink leaks.")))
        thread = await stack.thread("call-1")
    said = assert_vapi_stream(response.text)
    assert said.content == f"Sorry to hear that. {APOLOGY}"
    assert thread[1:] == [("user", "My sink leaks."), ("assistant", "Sorry to hear that."), ("assistant", APOLOGY)]


async def test_a_reply_that_stalls_mid_stream_is_ended_and_its_job_cancelled(tmp_path: Path) -> None:
    stalling = StallingProvider(words=("Let me see.",))
    async with vapi_stack(tmp_path, {"stalling": stalling}, **FAST) as stack:
        with anyio.fail_after(5):
            response = await stack.chat(chat_body(("user", "Is parking included?")))
        await stack.face.background.wait_idle()
        thread = await stack.thread("call-1")
    said = assert_vapi_stream(response.text)
    assert said.content == f"Let me see. {APOLOGY}"
    assert stalling.closed == ["job-1"] and stalling.cancelled == ["job-1"]
    assert thread[-2:] == [("assistant", "Let me see."), ("assistant", APOLOGY)]


async def test_stream_false_also_apologises_within_the_budget(tmp_path: Path) -> None:
    cold = ScriptedProvider("cold", first_token_delay_s=60)
    async with vapi_stack(tmp_path, {"cold": cold}, **FAST) as stack:
        with anyio.fail_after(5):
            response = await stack.chat(chat_body(("user", "hi"), stream=False))
    message = response.json()["choices"][0]["message"]
    assert message["content"] == f"{HOLD} {APOLOGY}"


async def test_a_hang_up_mid_reply_cancels_the_job_and_stores_what_was_said(tmp_path: Path) -> None:
    # " On Saturdays" has no chunk boundary: it waits in the stream, never reaches VAPI, and is not stored.
    stalling = StallingProvider(words=("The office opens", " at nine.", " On Saturdays"))
    async with vapi_stack(tmp_path, {"stalling": stalling}, vapi_answer_deadline_s=30) as stack:
        async with serving(stack.app, lifespan="off") as base, httpx.AsyncClient(base_url=base) as client:
            with anyio.fail_after(10):
                async with client.stream("POST", "/vapi/chat/completions", json=chat_body(("user", "Hours?"))) as r:
                    body, seen = r.aiter_text(), ""
                    while "at nine." not in seen:
                        seen += await anext(body)
                    await r.aclose()  # the caller barges in: VAPI drops the request
                await eventually(lambda: bool(stalling.cancelled))
                await eventually(lambda: stack.face.calls.turns("call-1"))
        thread = await stack.thread("call-1")
        turns = await stack.face.calls.turns("call-1")
    assert read_frames(seen.split("\n\n", 1)[0] + "\n\n")[0]["choices"][0]["delta"]["role"] == "assistant"
    assert stalling.closed == ["job-1"] and stalling.cancelled == ["job-1"]
    assert thread[1:] == [("user", "Hours?"), ("assistant", "The office opens at nine.")]
    assert turns[0]["outcome"] == "interrupted" and turns[0]["job_id"] == "job-1"


async def test_a_hang_up_while_the_model_is_still_cold_cancels_the_job(tmp_path: Path) -> None:
    cold = StallingProvider("cold")
    async with vapi_stack(tmp_path, {"cold": cold}, vapi_answer_deadline_s=30) as stack:
        async with serving(stack.app, lifespan="off") as base, httpx.AsyncClient(base_url=base) as client:
            with anyio.fail_after(10):
                async with client.stream("POST", "/vapi/chat/completions", json=chat_body(("user", "Hello?"))) as r:
                    body = r.aiter_text()
                    assert "assistant" in await anext(body)  # only the role frame comes
                    await eventually(lambda: cold.calls > 0)  # queued on a cold endpoint; now the caller hangs up
                    await r.aclose()
            await wait_until_closed(cold, "job-1")
            await eventually(lambda: stack.face.calls.turns("call-1"))
        thread = await stack.thread("call-1")
        turns = await stack.face.calls.turns("call-1")
    assert turns[0]["outcome"] == "interrupted"
    assert thread[1:] == [("user", "Hello?")]


async def test_a_holding_phrase_under_way_is_said_whole_before_the_round_returns() -> None:
    """The model answers while the holding phrase is still being said: the round waits for it."""
    steps: list[str] = []
    spoken: list[str] = []

    async def late_reply() -> AsyncIterator[ChatEvent]:
        await anyio.sleep(0.05)  # the holding phrase is due at 0.01 s
        yield TextDelta("Hello")
        completion = Completion("Hello", provider="p", model="m")
        yield Reply("Hello", "jamie", "m", "p", "stop", completion, None)

    async def on_late() -> None:
        steps.append("holding")
        await anyio.sleep(0.2)  # still saying it when the reply is done
        steps.append("held")

    async def on_text(text: str) -> None:
        spoken.append(text)

    clock = TurnClock(TurnBudget(holding_after_s=0.01, answer_deadline_s=5.0))
    result = await run_round(late_reply(), clock, on_text=on_text, on_late=on_late)
    assert result.outcome == "done" and spoken == ["Hello"]
    assert steps == ["holding", "held"]
    assert clock.held
