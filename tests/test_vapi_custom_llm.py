"""The Custom LLM route: VAPI's request shapes in, VAPI-safe chat.completion.chunk frames out."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import httpx
import pytest

import pete_vapi
from pete_mcp.routing.providers.openai_compatible import OpenAICompatibleProvider
from pete_vapi.chunks import ChunkStream
from pete_vapi.custom_llm import LLM_PATHS
from tests.support.scripted import ScriptedProvider
from tests.support.standins import serving
from tests.support.vapi_stack import JAMIE_PROMPT, assert_vapi_stream, chat_body, fixture, vapi_stack

pytestmark = pytest.mark.anyio


def test_the_package_exports_its_public_names_sorted() -> None:
    public = {n for n in vars(pete_vapi) if not n.startswith("_") and n != "annotations"}
    modules = {n for n in public if type(getattr(pete_vapi, n)).__name__ == "module"}
    assert pete_vapi.__all__ == sorted(pete_vapi.__all__)
    assert set(pete_vapi.__all__) == public - modules


async def test_a_turn_streams_frames_vapi_accepts_and_stores_both_sides(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        response = await stack.chat(chat_body(("user", "Hi, is the office open?")))
        thread = await stack.thread("call-1")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    said = assert_vapi_stream(response.text)
    assert (said.content, said.finish_reason, said.tool_calls) == ("Hello there.", "stop", [])
    assert thread == [("system", JAMIE_PROMPT), ("user", "Hi, is the office open?"), ("assistant", "Hello there.")]


async def test_a_calls_first_turn_starts_no_warm_up_task_for_a_provider_that_cannot_warm_for_calls(
    tmp_path: Path,
) -> None:
    """Only an endpoint that knows its workers for free (RunPod) is warmed as a call starts; for
    any other the first turn spawns nothing (at 32 calls starting at once, a task each is CPU the
    first tokens queue behind)."""
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        response = await stack.chat(chat_body(("user", "Is the office open?"), call_id="call-new"))
        warmer = stack.face.webhook.warmer
    assert response.status_code == 200
    assert not stack.core.warms_for_calls() and warmer.started == 0


async def test_model_text_that_is_not_plain_ascii_reaches_the_caller_in_well_formed_frames(tmp_path: Path) -> None:
    words = ("Café au lait ☕", ' costs "€3"', " \\ 日本語.")
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p", words=words)}) as stack:
        response = await stack.chat(chat_body(("user", "What does a coffee cost?")))
    said = assert_vapi_stream(response.text)
    assert (said.content, said.finish_reason) == ("".join(words), "stop")


async def test_a_lone_surrogate_in_model_text_still_makes_a_json_frame() -> None:
    # A model's escaped output can decode to a lone surrogate, which orjson refuses to encode.
    sent: list[bytes] = []

    async def send(message: dict[str, object]) -> None:
        body = message.get("body")
        if isinstance(body, bytes):
            sent.append(body)

    stream = ChunkStream(send, model="jamie")
    await stream.start()
    await stream.content("a \ud800 b")
    await stream.finish("stop")
    said = assert_vapi_stream(b"".join(sent).decode())
    assert (said.content, said.finish_reason) == ("a \ud800 b", "stop")


async def test_the_published_request_shape_is_answered_on_every_path(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        for n, path in enumerate(LLM_PATHS):
            body = fixture("custom_llm_request")
            body["call"]["id"] = f"c-{n}"
            body["call"]["monitor"].pop("controlUrl")
            response = await stack.client.post(path, json=body)
            assert response.status_code == 200, path
            said = assert_vapi_stream(response.text)
            assert said.content == "Hello there.", path
        assert await stack.thread("c-0") == [
            ("system", "You are Acme's after-hours assistant."),
            ("assistant", "Thanks for calling Acme."),
            ("user", "My sink is leaking."),
            ("assistant", "Hello there."),
        ]


async def test_frames_echo_the_requested_model_name(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        response = await stack.chat(chat_body(("user", "hi"), model="pm-assistant"))
    assert '"model":"pm-assistant"' in response.text


async def test_stream_false_returns_one_chat_completion(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        response = await stack.chat(chat_body(("user", "hi"), stream=False))
    body = response.json()
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert body["object"] == "chat.completion"
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hello there."}, "finish_reason": "stop"}
    ]


async def test_a_missing_stream_field_means_streaming(tmp_path: Path) -> None:
    body = chat_body(("user", "hi"))
    del body["stream"]
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        response = await stack.chat(body, headers={"accept": "application/json"})
    assert assert_vapi_stream(response.text).content == "Hello there."


async def test_a_resent_conversation_stores_only_what_is_new(tmp_path: Path) -> None:
    provider = ScriptedProvider("p", words=("Which", " unit?"))
    async with vapi_stack(tmp_path, {"p": provider}) as stack:
        await stack.chat(chat_body(("assistant", "Thanks for calling."), ("user", "My sink leaks.")))
        await stack.chat(
            chat_body(
                ("assistant", "Thanks for calling."),
                ("user", "My sink leaks."),
                ("assistant", "Which unit?"),
                ("user", "Unit 4B."),
            )
        )
        thread = await stack.thread("call-1")
    assert thread == [
        ("system", JAMIE_PROMPT),
        ("assistant", "Thanks for calling."),
        ("user", "My sink leaks."),
        ("assistant", "Which unit?"),
        ("user", "Unit 4B."),
        ("assistant", "Which unit?"),
    ]
    # The second turn's context is the stored thread, in order.
    assert [m.content for m in provider.seen[1]][-3:] == ["My sink leaks.", "Which unit?", "Unit 4B."]


async def test_a_reply_cut_short_by_barge_in_is_not_stored_twice(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p", words=("Sorry about the leak.", " Which unit?"))}) as s:
        await s.chat(chat_body(("user", "My sink leaks.")))
        # VAPI resends what was actually spoken: the reply up to where the caller cut in.
        await s.chat(chat_body(("user", "My sink leaks."), ("assistant", "Sorry about the"), ("user", "4B.")))
        thread = await s.thread("call-1")
    assert [r for r, _ in thread] == ["system", "user", "assistant", "user", "assistant"]


async def test_duplicate_deliveries_of_one_turn_store_it_once(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p", first_token_delay_s=0.05)}) as stack:
        body = chat_body(("user", "Is rent due on the first?"))
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(stack.chat, body)
        thread = await stack.thread("call-1")
    assert [c for r, c in thread if r == "user"] == ["Is rent due on the first?"]


async def test_a_request_without_a_call_id_still_gets_an_answer(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        response = await stack.chat(chat_body(("user", "hi"), call_id=None))
    assert assert_vapi_stream(response.text).content == "Hello there."


async def test_content_parts_and_function_roles_are_understood(tmp_path: Path) -> None:
    provider = ScriptedProvider("p")
    body = chat_body()
    body["messages"] += [
        {"role": "user", "content": [{"type": "text", "text": "My heater "}, {"type": "text", "text": "rattles."}]},
        {"role": "function", "name": "lookup_tenant", "content": "Dana Ruiz, unit 4B."},
    ]
    async with vapi_stack(tmp_path, {"p": provider}) as stack:
        response = await stack.chat(body)
        thread = await stack.thread("call-1")
    assert response.status_code == 200
    assert ("user", "My heater rattles.") in thread and ("tool", "Dana Ruiz, unit 4B.") in thread


async def test_a_body_that_is_not_json_is_a_400_not_a_crash(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        response = await stack.client.post("/vapi/chat/completions", content=b"{not json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_input"


async def test_secrets_and_caller_numbers_stay_out_of_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        await stack.chat(fixture("custom_llm_request"))
        for name in ("assistant_request", "tool_calls_string_args", "status_update_in_progress", "end_of_call_report"):
            assert (await stack.webhook(fixture(name))).status_code == 200
    assert "VAPI assistant-request payload" in caplog.text  # the payloads were logged, redacted
    assert "twilio-auth-token-DO-NOT-LOG" not in caplog.text
    assert "AC0000000000000000000000000000SID" not in caplog.text
    assert "+15551234567" not in caplog.text and "***4567" in caplog.text


@pytest.mark.slow
async def test_the_openai_client_streams_from_the_real_model_through_the_vapi_route(
    tmp_path: Path, model_server: object
) -> None:
    import openai

    url = model_server.url  # type: ignore[attr-defined]
    async with httpx.AsyncClient() as http:
        provider = OpenAICompatibleProvider("local", http, base_url=url + "/v1")
        # The first request after the server starts can take tens of seconds on a busy CPU: warm it first,
        # and give this turn a deadline that only a broken path would miss.
        async with vapi_stack(
            tmp_path, {"local": provider}, model="smollm2", vapi_answer_deadline_s=240, vapi_holding_after_s=240
        ) as stack:
            with anyio.fail_after(300):
                await stack.core.warm(stack.core.active)
            async with serving(stack.app, lifespan="off") as base:
                client = openai.AsyncOpenAI(base_url=base + "/vapi", api_key="not-checked", max_retries=0)
                with anyio.fail_after(300):
                    stream = await client.chat.completions.create(
                        model="jamie",
                        messages=[{"role": "user", "content": "Say hello to a tenant."}],
                        stream=True,
                        max_tokens=16,
                        temperature=0,
                        extra_body={"call": {"id": "call-openai"}},
                    )
                    chunks = [chunk async for chunk in stream]
                await client.close()
            thread = await stack.thread("call-openai")
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.strip()
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert thread[-2:] == [("user", "Say hello to a tenant."), ("assistant", text)]


async def test_turn_timings_of_calls_that_end_together_are_all_stored_in_order(tmp_path: Path) -> None:
    # Turns that end while another turn's timing is being written share the next write.
    async def call(stack: object, n: int) -> None:
        first = chat_body(("user", f"Question {n}?"), call_id=f"call-{n}")
        second = chat_body(
            ("user", f"Question {n}?"), ("assistant", "Hello there."), ("user", "And?"), call_id=f"call-{n}"
        )
        for body in (first, second):
            assert (await stack.chat(body)).status_code == 200  # type: ignore[attr-defined]

    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}) as stack:
        async with anyio.create_task_group() as tg:
            for n in range(12):
                tg.start_soon(call, stack, n)
        turns = [await stack.face.calls.turns(f"call-{n}") for n in range(12)]
    assert [len(t) for t in turns] == [2] * 12
    assert all(t[0]["at"] <= t[1]["at"] and t[0]["outcome"] == t[1]["outcome"] == "answer" for t in turns)
