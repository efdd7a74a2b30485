from pathlib import Path

import httpx
import pytest

from pete_mcp.contract import Message
from pete_mcp.core.errors import NotFound, ProviderUnavailable
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.provider import TextDelta
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import ChatTurn, Reply, build_core
from pete_mcp.routing.providers.runpod import RunPodProvider
from pete_mcp.runpod import RunPodClient
from tests.support.scripted import ScriptedProvider

pytestmark = pytest.mark.anyio


def registry(*providers: str) -> ModelRegistry:
    chain = tuple(Route(p, "m") for p in providers)
    return ModelRegistry(
        {"a": ModelSpec("a", chain, 2048, "A", "You are A."), "b": ModelSpec("b", chain, 2048, "B", None)}, "a"
    )


def core_with(tmp_path: Path, **providers: ScriptedProvider):
    return build_core(Settings(data_dir=tmp_path), providers=providers, registry=registry(*providers))


async def test_chat_streams_deltas_then_one_reply_and_persists_both_sides(tmp_path: Path) -> None:
    async with core_with(tmp_path, p=ScriptedProvider("p")) as core:
        events = [e async for e in core.chat(ChatTurn([Message(role="user", content="hi")], conversation_id="c1"))]
        thread = await core.store.thread("c1")
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", " there", "."]
    assert isinstance(events[-1], Reply) and events[-1].text == "Hello there."
    assert [(m["role"], m["content"], m["provider"]) for m in thread] == [
        ("user", "hi", None),
        ("assistant", "Hello there.", "p"),
    ]


async def test_the_models_system_prompt_leads_the_context(tmp_path: Path) -> None:
    provider = ScriptedProvider("p")
    async with core_with(tmp_path, p=provider) as core:
        await core.complete(ChatTurn([Message(role="user", content="hi")]))
    assert provider.seen[0][0] == Message(role="system", content="You are A.")


async def test_a_failed_reply_keeps_what_the_caller_said(tmp_path: Path) -> None:
    broken = ScriptedProvider("p", fail_before=ProviderUnavailable("down", provider="p"))
    async with core_with(tmp_path, p=broken) as core:
        with pytest.raises(ProviderUnavailable):
            await core.complete(ChatTurn([Message(role="user", content="my sink leaks")], conversation_id="c2"))
        thread = await core.store.thread("c2")
        snapshot = core.metrics.snapshot()
    assert [m["content"] for m in thread] == ["my sink leaks"]
    assert snapshot["errors"] == 1


async def test_the_next_provider_answers_when_the_first_fails_before_its_first_token(tmp_path: Path) -> None:
    first = ScriptedProvider("first", fail_before=ProviderUnavailable("cold", provider="first"))
    second = ScriptedProvider("second", words=("Fine",))
    async with core_with(tmp_path, first=first, second=second) as core:
        reply = await core.complete(ChatTurn([Message(role="user", content="hi")]))
    assert (reply.provider, reply.text) == ("second", "Fine")


async def test_switch_is_persisted_across_a_restart(tmp_path: Path) -> None:
    async with core_with(tmp_path, p=ScriptedProvider("p")) as core:
        result = await core.switch_model("b", by="test")
        assert (result.previous, result.active) == ("a", "b")
    async with core_with(tmp_path, p=ScriptedProvider("p")) as core:
        assert core.active_alias == "b"
        rows = await core.store.query("SELECT from_model, to_model, by FROM switches")
    assert rows == [{"from_model": "a", "to_model": "b", "by": "test"}]


async def test_switching_to_an_unknown_model_names_the_registered_ones(tmp_path: Path) -> None:
    async with core_with(tmp_path, p=ScriptedProvider("p")) as core:
        with pytest.raises(NotFound, match="Registered models: a, b"):
            await core.switch_model("nope")
        assert core.active_alias == "a"


async def test_input_tokens_a_server_did_not_count_are_estimated_from_the_context_it_was_sent(tmp_path: Path) -> None:
    async def input_tokens(provider: ScriptedProvider, text: str) -> int:
        async with core_with(tmp_path / provider.name, **{provider.name: provider}) as core:
            reply = await core.complete(ChatTurn([Message(role="user", content=text)]))
            assert core.metrics.snapshot()["totals"]["input_tokens"] == reply.completion.usage.prompt_tokens
        return reply.completion.usage.prompt_tokens

    short = await input_tokens(ScriptedProvider("p", prompt_tokens=0), "hi")
    long = await input_tokens(ScriptedProvider("q", prompt_tokens=0), "My sink is leaking under the cabinet. " * 40)
    assert 0 < short < long
    assert 350 <= long <= 450  # ~1,530 characters (+ the system prompt): about four per token
    assert await input_tokens(ScriptedProvider("r", prompt_tokens=9), "hi") == 9  # a server's own count is kept


async def test_warms_for_calls_only_when_the_first_route_can_warm_its_endpoint_for_a_call(tmp_path: Path) -> None:
    """A call's first turn spawns a warm-up task only when `warm_for_call` could do anything."""
    async with httpx.AsyncClient() as http:  # never used: no request is sent
        client = RunPodClient(http, base_url="http://127.0.0.1:9", endpoint_id="ep", api_key="k")
        runpod = RunPodProvider(client, use_openai_route=False)
        plain = ScriptedProvider("plain")
        on_runpod = build_core(
            Settings(data_dir=tmp_path / "a"),
            providers={"runpod": runpod, "plain": plain},
            registry=registry("runpod", "plain"),
        )
        on_plain = build_core(
            Settings(data_dir=tmp_path / "b"),
            providers={"plain": plain, "runpod": runpod},
            registry=registry("plain", "runpod"),
        )
        model_on_runpod, model_on_plain = on_runpod.models.get("a"), on_plain.models.get("a")
        assert on_runpod.warms_for_calls(model_on_runpod)
        assert not on_plain.warms_for_calls(model_on_plain)
        assert await on_plain.warm_for_call(model_on_plain) is None
