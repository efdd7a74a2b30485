"""Zero-downtime switching: warm and check first, swap atomically, record every try."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.provider import TextDelta
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import ChatTurn, Reply, build_core
from tests.support.paced_provider import PacedProvider

pytestmark = pytest.mark.anyio


def registry() -> ModelRegistry:
    return ModelRegistry(
        {
            "old": ModelSpec("old", (Route("p", "old-model"),), 2048),
            "new": ModelSpec("new", (Route("q", "new-model"),), 2048),
        },
        "old",
    )


def core_with(tmp_path: Path, p: PacedProvider, q: PacedProvider, **settings: float):
    return build_core(Settings(data_dir=tmp_path, **settings), providers={"p": p, "q": q}, registry=registry())


async def test_a_switch_warms_the_new_model_checks_it_answers_and_records_the_warm_up(tmp_path: Path) -> None:
    q = PacedProvider("q", warm_delay_s=0.05, words=("Hello", "!"))
    async with core_with(tmp_path, PacedProvider("p"), q) as core, core.events.subscribe() as sub:
        result = await core.switch_model("new", by="mcp")
        event = await sub.get()
        history = await core.switch_history()
    assert (result.previous, result.active, result.provider, result.sample) == ("old", "new", "q", "Hello!")
    assert result.warmup_s is not None and result.warmup_s >= 0.05
    assert q.warmed == ["new-model"] and q.finished == ["q-0"]  # warmed, then asked
    assert (event.kind, event.data["active"], event.data["by"]) == ("model.switched", "new", "mcp")
    (record,) = history
    assert (record.from_model, record.to_model, record.by, record.ok) == ("old", "new", "mcp", True)
    assert record.warmup_s == result.warmup_s
    assert record.as_dict()["to"] == "new"


async def test_a_failed_warm_up_leaves_the_old_model_active_says_why_and_is_recorded(tmp_path: Path) -> None:
    q = PacedProvider("q", warm_error=ProviderUnavailable("no GPU available in the region", provider="q"))
    async with core_with(tmp_path, PacedProvider("p"), q) as core, core.events.subscribe() as sub:
        with pytest.raises(ProviderError, match="Switch to 'new' failed, so 'old' stays active: no GPU") as info:
            await core.switch_model("new", by="dashboard")
        assert core.active_alias == "old"
        event = await sub.get()
        history = await core.switch_history()
        reply = await core.complete(ChatTurn([Message(role="user", content="hi")]))
    assert info.value.hint  # tells the operator what to do next
    assert event.kind == "model.switch_failed" and "no GPU" in event.data["reason"]
    assert [(r.to_model, r.ok, r.by) for r in history] == [("new", False, "dashboard")]
    assert "no GPU" in history[0].detail
    assert reply.alias == "old"


async def test_a_model_that_answers_with_nothing_is_not_switched_to(tmp_path: Path) -> None:
    q = PacedProvider("q", words=("",))
    async with core_with(tmp_path, PacedProvider("p"), q) as core:
        with pytest.raises(ProviderError, match="empty text"):
            await core.switch_model("new")
        assert core.active_alias == "old"


async def test_a_warm_up_over_budget_fails_the_switch_in_time(tmp_path: Path) -> None:
    q = PacedProvider("q", warm_delay_s=5.0)
    async with core_with(tmp_path, PacedProvider("p"), q, switch_budget_s=0.2) as core:
        with anyio.fail_after(2), pytest.raises(ProviderTimeout, match=r"within 0\.2 s"):
            await core.switch_model("new")
        assert core.active_alias == "old"
        assert (await core.store.get_state("active_model")) is None


async def test_requests_already_running_finish_on_the_model_they_started_with(tmp_path: Path) -> None:
    p = PacedProvider("p", words=tuple(f"old{i} " for i in range(6)), token_gap_s=0.05)
    q = PacedProvider("q", words=("new",))
    async with core_with(tmp_path, p, q, hedging=False) as core:
        first_token = anyio.Event()
        replies: list[Reply] = []

        async def long_request() -> None:
            async for event in core.chat(ChatTurn([Message(role="user", content="hi")], options=ChatOptions())):
                if isinstance(event, TextDelta):
                    first_token.set()
                elif isinstance(event, Reply):
                    replies.append(event)

        async with anyio.create_task_group() as tg:
            tg.start_soon(long_request)
            with anyio.fail_after(5):
                await first_token.wait()
            await core.switch_model("new", by="test")
            after = await core.complete(ChatTurn([Message(role="user", content="hi")]))
    (before,) = replies
    assert (before.alias, before.provider, before.model) == ("old", "p", "old-model")
    assert before.text == "".join(f"old{i} " for i in range(6))
    assert (after.alias, after.provider, after.model) == ("new", "q", "new-model")


async def test_switches_are_serialised_and_the_history_is_newest_first(tmp_path: Path) -> None:
    async with core_with(tmp_path, PacedProvider("p"), PacedProvider("q")) as core:
        async with anyio.create_task_group() as tg:
            tg.start_soon(core.switch_model, "new")
            tg.start_soon(core.switch_model, "old")
        history = await core.switch_history(limit=10)
        assert core.active_alias == history[0].to_model
    assert len(history) == 2
    assert history[0].from_model == history[1].to_model  # the second started from the first's result
