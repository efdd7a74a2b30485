"""MCP resources and prompts, and resource-updated notifications to subscribers of both protocol eras."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from mcp import MCPError
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import ResourceUpdatedNotification, TextResourceContents

from pete_mcp.core.events import EventBus
from pete_mcp.faces.mcp.live_updates import FLEET_URI, HEALTH_URI, LOGS_URI, METRICS_URI, MODELS_URI, ResourceUpdates
from tests.support.mcp import connect, open_core

pytestmark = pytest.mark.anyio


async def read_json(client: Any, uri: str) -> Any:
    result = await client.read_resource(uri)
    content = result.contents[0]
    assert isinstance(content, TextResourceContents) and content.mime_type == "application/json"
    return json.loads(content.text)


async def test_lists_the_resources_template_and_prompts(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        diagnose = await client.get_prompt("diagnose_slow_calls")
    assert resources == {
        METRICS_URI,
        FLEET_URI,
        MODELS_URI,
        HEALTH_URI,
        LOGS_URI,
        "pete://escalations",
        "ui://pete/live.html",
        "pete://calls/live",
        "pete://calls/recent",
        "pete://jobs",
    }
    assert sorted(templates) == [
        "pete://calls/{call_id}",
        "pete://conversations/{conversation_id}",
        "pete://desk/{kind}",
    ]
    assert prompts == {"diagnose_slow_calls", "deploy_checklist"}
    assert "health" in str(diagnose.messages[0].content)


async def test_live_metrics_is_the_cores_snapshot(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        await client.call_tool("run_prompt", {"prompt": "hi"})
        live = await read_json(client, METRICS_URI)
        snapshot = json.loads(json.dumps(core.metrics.snapshot(), default=str))
    volatile = {"generated_at"}
    assert {k: v for k, v in live.items() if k not in volatile} == {
        k: v for k, v in snapshot.items() if k not in volatile
    }
    assert json.dumps(live).count("jamie") >= 1


async def test_models_and_health_resources(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        models = await read_json(client, MODELS_URI)
        health = await read_json(client, HEALTH_URI)
    assert models["active"] == "jamie" and [m["alias"] for m in models["models"]] == ["jamie", "backup"]
    checks = {c["name"]: c for c in health["checks"]}
    # A resource read never wakes a GPU: the model is judged by its provider's free health, no chat is sent.
    assert checks["active_model"]["status"] == "ok" and openai_standin.requests == []
    assert checks["storage"]["status"] == "ok"


async def test_a_conversation_reads_back_with_both_turns(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        result = await client.call_tool("run_prompt", {"prompt": "Is my rent late?", "conversation_id": "new"})
        assert result.structured_content is not None
        conversation_id = result.structured_content["conversation_id"]
        thread = await read_json(client, f"pete://conversations/{conversation_id}")
        with pytest.raises(MCPError) as missing:
            await client.read_resource("pete://conversations/conv-nope")
    assert conversation_id.startswith("conv-")
    assert [(m["role"], m["content"]) for m in thread["messages"]] == [
        ("user", "Is my rent late?"),
        ("assistant", "Rent is due on the first."),
    ]
    assert "conv-nope" in missing.value.message


async def test_recent_logs_show_core_events(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        await client.call_tool("switch_model", {"name": "backup", "warm": False})
        with anyio.fail_after(5):
            while True:
                entries = (await read_json(client, LOGS_URI))["entries"]
                if any("model.switched" in e["message"] for e in entries):
                    break
                await anyio.sleep(0.01)
    event = next(e for e in entries if "model.switched" in e["message"])
    assert event["level"] == "EVENT" and event["data"]["active"] == "backup"


async def test_a_2026_listener_hears_live_metrics_change(tmp_path: Path, openai_standin):
    async with (
        open_core(tmp_path, openai_standin) as core,
        connect(core, "auto") as client,
        client.listen(resource_subscriptions=[METRICS_URI]) as subscription,
    ):
        await client.call_tool("run_prompt", {"prompt": "hi"})
        with anyio.fail_after(5):
            event = await subscription.__anext__()
    assert getattr(event, "uri", None) == METRICS_URI


async def test_a_2025_subscriber_hears_live_metrics_change(tmp_path: Path, openai_standin):
    heard = anyio.Event()
    updates: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            heard.set()

    async with (
        open_core(tmp_path, openai_standin) as core,
        connect(core, "legacy", message_handler=on_message) as client,
    ):
        assert client.server_capabilities.resources and client.server_capabilities.resources.subscribe
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)  # deprecated in 2026, what 2025 hosts use
            await client.subscribe_resource(METRICS_URI)
        await client.call_tool("run_prompt", {"prompt": "hi"})
        with anyio.fail_after(5):
            await heard.wait()
    assert updates == [METRICS_URI]


async def test_updates_are_throttled_to_one_per_interval():
    bus = EventBus()
    calls: list[list[str]] = []
    first, second = anyio.Event(), anyio.Event()

    async def notify(uris: list[str]) -> None:
        calls.append(uris)
        (second if first.is_set() else first).set()

    updates = ResourceUpdates(bus, notify, interval_s=1.0)
    async with anyio.create_task_group() as tg:
        await tg.start(updates.run)
        for _ in range(50):
            bus.publish("request.done", alias="jamie")
        with anyio.fail_after(5):
            await first.wait()
        for _ in range(50):
            bus.publish("request.done", alias="jamie")
        await anyio.lowlevel.checkpoint()
        assert len(calls) == 1  # the burst after the first notification waits for the interval
        with anyio.fail_after(5):
            await second.wait()
        tg.cancel_scope.cancel()
    assert calls[0] == sorted({LOGS_URI, METRICS_URI, MODELS_URI}) and calls[1] == calls[0]
