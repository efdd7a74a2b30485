"""What the MCP face names so a model need not guess: titles, the model enum, completions, the live app.

Read through the SDK's in-memory client in both protocol eras, as a host would.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import PromptReference, ResourceTemplateReference, TextContent, TextResourceContents

from pete_mcp.core.models import ModelSpec
from pete_mcp.core.models import Route as ModelRoute
from pete_mcp.faces.mcp.live_app import LIVE_APP_URI
from tests.support.mcp import connect, open_core

pytestmark = pytest.mark.anyio


async def test_every_tool_resource_template_and_prompt_has_a_title(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        tools = (await client.list_tools()).tools
        resources = (await client.list_resources()).resources
        templates = (await client.list_resource_templates()).resource_templates
        prompts = (await client.list_prompts()).prompts
    named = [*tools, *resources, *templates, *prompts]
    assert len(tools) >= 13 and resources and templates and prompts
    untitled = [item.name for item in named if not (item.title or "").strip()]
    assert untitled == []
    assert len({t.title for t in tools}) == len(tools)  # no two tools share a title


async def test_the_server_says_who_it_is_with_an_icon_and_a_website(tmp_path: Path, openai_standin):
    async with open_core(tmp_path, openai_standin) as core, connect(core, "legacy") as client:
        info = client.server_info
    assert info is not None and info.title == "Pete" and info.website_url and info.website_url.startswith("http")
    assert info.icons and info.icons[0].src.startswith("data:image/svg+xml;base64,")


async def test_model_arguments_are_an_enum_of_the_aliases_list_models_returns(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        listed = await client.call_tool("list_models", {})
    aliases = [m["alias"] for m in (listed.structured_content or {})["models"]]
    assert aliases == ["jamie", "backup"]
    assert tools["switch_model"].input_schema["properties"]["name"]["enum"] == aliases
    model = tools["run_prompt"].input_schema["properties"]["model"]
    assert [b["enum"] for b in model["anyOf"] if b.get("type") == "string"] == [aliases]
    assert {"type": "null"} in model["anyOf"]  # still optional: the active model by default


async def test_a_changed_registry_changes_the_enum_and_tells_clients(tmp_path: Path, openai_standin):
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if getattr(getattr(message, "root", message), "method", "") == "notifications/tools/list_changed":
            changed.set()

    async with (
        open_core(tmp_path, openai_standin) as core,
        connect(core, "legacy", message_handler=on_message, update_interval_s=0.01) as client,
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)  # deprecated in 2026, what 2025 hosts use
            await client.subscribe_resource("pete://models")  # a 2025-era session the server can reach
        core.models.specs["extra"] = ModelSpec("extra", (ModelRoute("local", "tiny"),), 1024, "Added at run time.")
        core.events.publish("model.registry_changed", added="extra")
        with anyio.fail_after(5):
            await changed.wait()
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert tools["switch_model"].input_schema["properties"]["name"]["enum"] == ["jamie", "backup", "extra"]


async def test_completions_offer_model_aliases_and_stored_conversation_ids(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        for conversation in ("conv-aaa1", "conv-aab2", "call-zzz"):
            await client.call_tool("run_prompt", {"prompt": "hi", "conversation_id": conversation, "max_tokens": 2})
        ids = await client.complete(
            ResourceTemplateReference(uri="pete://conversations/{conversation_id}"),
            {"name": "conversation_id", "value": "conv-aa"},
        )
        models = await client.complete(PromptReference(name="diagnose_slow_calls"), {"name": "model", "value": "ba"})
    assert sorted(ids.completion.values) == ["conv-aaa1", "conv-aab2"]
    assert models.completion.values == ["backup"]


async def test_deploy_checklist_completes_images_deployed_before(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        await core.store.execute(
            "INSERT INTO deploys(at, image, previous_image, status) VALUES (1, ?, ?, 'done')",
            ("reg/worker:1.2.0", "reg/worker:1.1.0"),
        )
        images = await client.complete(PromptReference(name="deploy_checklist"), {"name": "image", "value": "reg/"})
    assert images.completion.values == ["reg/worker:1.2.0", "reg/worker:1.1.0"]


async def test_the_live_app_is_listed_served_as_an_mcp_app_and_linked_from_tools(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        resources = {str(r.uri): r for r in (await client.list_resources()).resources}
        page = await client.read_resource(LIVE_APP_URI)
        tools = {t.name: t for t in (await client.list_tools()).tools}
        live = await client.call_tool("live_status", {})
        health = await client.call_tool("health", {"probe": False})
    assert resources[LIVE_APP_URI].mime_type == APP_MIME_TYPE and resources[LIVE_APP_URI].title
    content = page.contents[0]
    assert isinstance(content, TextResourceContents) and content.mime_type == APP_MIME_TYPE
    assert "<html" in content.text and "live_status" in content.text and "ui/initialize" in content.text
    for name in ("health", "endpoint_status", "live_status"):
        assert (tools[name].meta or {}).get("ui", {}).get("resourceUri") == LIVE_APP_URI
    # Hosts without apps still get text: the same JSON the structured result holds.
    for result in (live, health):
        block = result.content[0]
        assert isinstance(block, TextContent) and json.loads(block.text) == result.structured_content
    assert live.structured_content is not None
    assert set(live.structured_content["metrics"]) == set(core.metrics.snapshot())  # the /api/metrics shape
    assert live.structured_content["calls_under_way"] == []


async def test_the_server_advertises_mcp_apps_to_2026_clients(tmp_path: Path, openai_standin):
    async with open_core(tmp_path, openai_standin) as core, connect(core, "auto") as client:
        capabilities = client.server_capabilities
    assert EXTENSION_ID in (capabilities.extensions or {})
