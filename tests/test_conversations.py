"""Conversation context: fitted to the serving model's window, carried across switches and restarts."""

from __future__ import annotations

from typing import Any

import pytest

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.conversations import estimate_tokens, fit_to_window
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import ChatTurn, build_core
from tests.support.scripted import ScriptedProvider

SYSTEM = [{"role": "system", "content": "You are Jamie."}]


def msg(role: str, content: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **extra}


def call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "lookup_unit", "arguments": '{"unit": "4B"}'}}


def test_estimates_grow_with_content_and_tool_calls() -> None:
    short = estimate_tokens(msg("user", "hi"))
    long = estimate_tokens(msg("user", "hi " * 100))
    with_call = estimate_tokens(msg("assistant", "", tool_calls=[call("c1")]))
    assert short < long
    assert with_call > estimate_tokens(msg("assistant", ""))
    assert 300 / 4 <= long <= 300 / 3 + 4  # about 3.5 bytes a token


def test_everything_fits_in_a_big_window() -> None:
    thread = [msg("user", f"question {i}") if i % 2 == 0 else msg("assistant", f"answer {i}") for i in range(10)]
    assert fit_to_window(SYSTEM, thread, window=8192, reserve=256) == [*SYSTEM, *thread]


def test_a_small_window_keeps_the_system_prompt_and_the_newest_turns() -> None:
    thread = [msg("user" if i % 2 == 0 else "assistant", f"turn {i} " + "x" * 200) for i in range(40)]
    fitted = fit_to_window(SYSTEM, thread, window=512, reserve=128)
    assert fitted[0] == SYSTEM[0]
    kept = fitted[1:]
    assert kept == thread[-len(kept) :]  # a suffix: newest turns, in order
    assert 1 <= len(kept) < len(thread)
    assert sum(estimate_tokens(m) for m in fitted) <= 512 - 128


def test_a_tool_call_is_never_separated_from_its_results() -> None:
    group = [
        msg("assistant", "", tool_calls=[call("c1"), call("c2")]),
        msg("tool", "unit 4B: Maria", tool_call_id="c1"),
        msg("tool", "unit 4B: rent paid", tool_call_id="c2"),
    ]
    thread = [msg("user", "a" * 400), msg("user", "who lives in 4B?"), *group, msg("assistant", "Maria does.")]
    newest = [thread[-1]]
    budget_for_tail = sum(estimate_tokens(m) for m in newest) + sum(estimate_tokens(m) for m in group)
    system_cost = estimate_tokens(SYSTEM[0])
    seen_states: set[bool] = set()
    for window in range(system_cost + 40, system_cost + budget_for_tail + 200, 3):
        kept = fit_to_window(SYSTEM, thread, window=window, reserve=0)[1:]
        has_call = group[0] in kept
        results = [m for m in kept if m.get("role") == "tool"]
        assert (has_call and results == group[1:]) or (not has_call and not results), window
        seen_states.add(has_call)
    assert seen_states == {True, False}  # the cut fell on both sides of the group


def test_a_tool_result_whose_call_was_never_stored_is_dropped() -> None:
    thread = [msg("tool", "orphan", tool_call_id="c9"), msg("user", "hello")]
    assert fit_to_window(SYSTEM, thread, window=4096, reserve=0) == [*SYSTEM, thread[1]]


def test_the_newest_message_is_kept_even_when_it_alone_is_too_long() -> None:
    huge = msg("user", "start " + "word " * 2000 + "THE END")
    fitted = fit_to_window(SYSTEM, [msg("user", "old"), huge], window=512, reserve=128)
    assert fitted[0] == SYSTEM[0] and len(fitted) == 2
    assert fitted[1]["content"].endswith("THE END")
    assert estimate_tokens(fitted[1]) <= 512


def registry(small_window: int = 512) -> ModelRegistry:
    return ModelRegistry(
        {
            "big": ModelSpec("big", (Route("p", "big-model"),), 8192, "big", "You are Jamie."),
            "small": ModelSpec("small", (Route("p", "small-model"),), small_window, "small", "You are Jamie."),
        },
        "big",
    )


def turn(text: str) -> ChatTurn:
    return ChatTurn([Message(role="user", content=text)], conversation_id="call-1", options=ChatOptions(max_tokens=64))


@pytest.mark.anyio
async def test_after_a_switch_to_a_smaller_model_the_context_is_refitted_to_its_window(
    db_settings: dict[str, Any],
) -> None:
    provider = ScriptedProvider("p", words=("Sure", " thing", "." * 150))
    async with build_core(Settings(**db_settings), providers={"p": provider}, registry=registry()) as core:
        for i in range(12):
            await core.complete(turn(f"question {i} " + "y" * 120))
        assert len(provider.seen[-1]) == 1 + 23  # system + 11 earlier pairs + this question
        await core.switch_model("small", by="test")
        reply = await core.complete(turn("and the last one?"))
    context = provider.seen[-1]
    assert reply.model == "small-model"
    assert context[0].content == "You are Jamie."
    assert context[-1].content == "and the last one?"
    assert 2 < len(context) < 24
    tokens = sum(estimate_tokens(m.model_dump(exclude_none=True)) for m in context)
    assert tokens <= 512 - 64


@pytest.mark.anyio
async def test_a_new_core_on_the_same_database_carries_the_whole_conversation(db_settings: dict[str, Any]) -> None:
    first = ScriptedProvider("p", words=("Noted",))
    settings = Settings(**db_settings)
    async with build_core(settings, providers={"p": first}, registry=registry()) as core:
        await core.complete(turn("My name is Ana, unit 4B."))
        await core.complete(turn("The kitchen sink leaks."))
    second = ScriptedProvider("p", words=("OK",))
    async with build_core(settings, providers={"p": second}, registry=registry()) as core:
        await core.complete(turn("When can someone come?"))
        thread = await core.store.thread("call-1")
    assert [(m.role, m.content) for m in second.seen[0]] == [
        ("system", "You are Jamie."),
        ("user", "My name is Ana, unit 4B."),
        ("assistant", "Noted"),
        ("user", "The kitchen sink leaks."),
        ("assistant", "Noted"),
        ("user", "When can someone come?"),
    ]
    assert [m["content"] for m in thread][-2:] == ["When can someone come?", "OK"]
    assert len(thread) == 6


@pytest.mark.anyio
async def test_a_synced_turns_context_is_the_thread_its_sync_stored(db_settings: dict[str, Any]) -> None:
    """The context after `sync` comes from the sync's own transaction; it must equal a fresh read."""
    settings = Settings(**db_settings)
    spec = registry().get("big")
    resent = [
        Message(role="system", content="You are Jamie, on a call."),
        Message(role="user", content="Is unit 4B free?"),
        Message.model_validate({"role": "assistant", "tool_calls": [call("t1")]}),
        Message.model_validate({"role": "tool", "content": "free", "tool_call_id": "t1"}),
        Message(role="assistant", content="It is."),
        Message(role="user", content="Great, book a viewing."),
    ]
    async with build_core(settings, providers={"p": ScriptedProvider("p")}, registry=registry()) as core:
        await core.conversations.sync("call-1", resent[:2], source="vapi")  # an earlier turn
        new = await core.conversations.sync("call-1", resent, source="vapi")
        handed_over = await core.conversations.context("call-1", spec)
        read_back = await core.conversations.context("call-1", spec)  # used once: this one reads the store
    assert [m.content for m in new] == ["", "free", "It is.", "Great, book a viewing."]
    assert handed_over == read_back
    assert handed_over[0].content == "You are Jamie, on a call." and len(handed_over) == 6


@pytest.mark.anyio
async def test_what_a_turn_appends_after_its_sync_is_in_its_next_context(db_settings: dict[str, Any]) -> None:
    spec = registry().get("big")
    async with build_core(Settings(**db_settings), providers={"p": ScriptedProvider("p")}, registry=registry()) as core:
        await core.conversations.sync("call-1", [Message(role="user", content="hi")], source="vapi")
        await core.conversations.record_reply("call-1", "Hello!", source="vapi", model="m", provider="p")
        context = await core.conversations.context("call-1", spec)
    assert [(m.role, m.content) for m in context] == [
        ("system", "You are Jamie."),
        ("user", "hi"),
        ("assistant", "Hello!"),
    ]
