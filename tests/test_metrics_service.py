"""The metrics service over a real core: persisted rollups, health polling, events, store figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from pete_mcp.contract import Message
from pete_mcp.core.errors import ProviderTimeout
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.provider import ProviderHealth
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import ChatTurn, Core, build_core
from pete_mcp.metrics.service import run_metrics_service
from tests.support.scripted import ScriptedProvider

pytestmark = pytest.mark.anyio


@dataclass
class EndpointLike(ScriptedProvider):
    """A scripted provider whose health (and RunPod-style figures) the test sets."""

    healthy: bool = True
    figures: dict[str, int | float | str] = field(default_factory=dict)

    async def health(self) -> ProviderHealth:
        return ProviderHealth(self.healthy, "fine" if self.healthy else "unreachable", dict(self.figures))


def make_core(tmp_path: Path, provider: ScriptedProvider, **settings: object) -> Core:
    registry = ModelRegistry(
        {
            "a": ModelSpec("a", (Route(provider.name, "model-a"),), 2048, "A"),
            "b": ModelSpec("b", (Route(provider.name, "model-b"),), 2048, "B"),
        },
        "a",
    )
    config = Settings(data_dir=tmp_path, metrics_poll_interval_s=0.05, **settings)  # type: ignore[arg-type]
    return build_core(config, providers={provider.name: provider}, registry=registry)


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll state that the service's background tasks change, bounded by `timeout_s`."""
    with anyio.fail_after(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the service has no event to wait on from outside
            await anyio.sleep(0.01)


def hi() -> ChatTurn:
    return ChatTurn([Message(role="user", content="hi")])


async def test_a_restart_keeps_the_24h_view_and_its_errors(tmp_path: Path) -> None:
    async with make_core(tmp_path, ScriptedProvider("p")) as core, run_metrics_service(core):
        for _ in range(3):
            await core.complete(hi())
    broken = ScriptedProvider("p", fail_before=ProviderTimeout("p did not answer in time.", provider="p"))
    async with make_core(tmp_path, broken) as core, run_metrics_service(core):
        with pytest.raises(ProviderTimeout):
            await core.complete(hi())
    async with make_core(tmp_path, ScriptedProvider("p")) as core, run_metrics_service(core):
        snap = core.metrics.snapshot()
    assert snap["totals"]["requests"] == 4 and snap["totals"]["errors"] == 1
    assert snap["models"][0]["ttft"]["count"] == 3
    assert [e["message"] for e in snap["recent_errors"]] == ["p did not answer in time."]


async def test_health_polls_feed_the_snapshot_and_announce_changes(tmp_path: Path) -> None:
    provider = EndpointLike("runpod", figures={"in_queue": 0, "workers_idle": 1})
    async with make_core(tmp_path, provider) as core, core.events.subscribe() as sub, run_metrics_service(core):
        await wait_until(lambda: core.metrics.runpod is not None)
        assert core.metrics.snapshot()["runpod"]["live"] is True
        provider.healthy = False
        provider.figures = {}
        with anyio.fail_after(5):
            while (event := await sub.get()).kind != "provider.down":
                pass
        assert event.data["provider"] == "runpod"
        snap = core.metrics.snapshot()
    assert snap["runpod"]["live"] is False and snap["runpod"]["reachable"] is False
    assert snap["providers"] == [
        {"name": "runpod", "ok": False, "detail": "unreachable", "checked_at": snap["providers"][0]["checked_at"]}
    ]


async def test_live_calls_conversations_and_switches_come_from_events_and_the_store(tmp_path: Path) -> None:
    async with make_core(tmp_path, ScriptedProvider("p")) as core, run_metrics_service(core):
        core.events.publish("call.started", call_id="call-1")
        core.events.publish("call.started", call_id="call-2")
        core.events.publish("call.ended", call_id="call-1")
        await core.complete(ChatTurn([Message(role="user", content="hi")], conversation_id="conv-1"))
        await core.switch_model("b", warm=False, by="test")
        await wait_until(lambda: core.metrics.snapshot()["active_model"] == "b" and core.metrics.switches != [])
        await wait_until(lambda: core.metrics.live_calls == {"call-2"})
        snap = core.metrics.snapshot()
    assert snap["live_calls"] == 1
    assert snap["active_conversations"] == 1 and snap["conversations_total"] == 1
    assert snap["switches"][0]["to_model"] == "b" and snap["switches"][0]["by"] == "test"


async def test_a_second_service_for_the_same_core_starts_nothing(tmp_path: Path) -> None:
    async with make_core(tmp_path, ScriptedProvider("p")) as core, run_metrics_service(core) as first:
        async with run_metrics_service(core) as second:
            assert first is not None and second is None
        assert core.metrics.service_running
