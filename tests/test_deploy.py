"""Deploys: the RunPod REST v2 stand-in gets exactly the documented PATCH; rollouts are followed; rollback undoes.

The MCP `deploy`/`rollback` tools run in both protocol eras; the `Deployer` and `RunPodRest`
underneath are also tested directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import MCPError
from mcp.types import ElicitResult, TextContent

from pete_mcp.core.errors import AuthError, InputError, NotFound
from pete_mcp.ops.deploy import check_image_pinned
from pete_mcp.runpod.rest import RunPodRest
from tests.support.mcp import connect, open_core, standin_deployer
from tests.support.runpod_rest_standin import API_KEY, FIRST_IMAGE, RunPodStandIn

pytestmark = pytest.mark.anyio

NEW_IMAGE = "registry.example/pete-worker:1.4.2"


def text_of(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def deploy_rows(core: Any) -> list[dict[str, Any]]:
    return await core.store.query("SELECT kind, image, previous_image, status FROM deploys ORDER BY id")


async def test_deploy_without_confirmation_changes_nothing(tmp_path: Path, openai_standin, runpod_standin, era):
    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core:
        async with connect(core, era, deployer=standin_deployer(core, runpod_standin)) as client:
            result = await client.call_tool("deploy", {"image": NEW_IMAGE})
        rows = await deploy_rows(core)
    assert result.is_error and "confirm=true" in text_of(result)
    assert runpod_standin.state.patches == [] and rows == []
    assert runpod_standin.state.endpoint["image"] == FIRST_IMAGE


async def test_deploy_patches_the_image_follows_the_rollout_and_records_it(
    tmp_path: Path, openai_standin, runpod_standin: RunPodStandIn, era
):
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core:
        async with connect(core, era, deployer=standin_deployer(core, runpod_standin)) as client:
            result = await client.call_tool(
                "deploy", {"image": NEW_IMAGE, "confirm": True}, progress_callback=on_progress
            )
        rows = await deploy_rows(core)
    assert not result.is_error, text_of(result)
    patches = [(m, p, b) for m, p, b in runpod_standin.state.requests if m == "PATCH"]
    assert patches == [("PATCH", "/v2/serverless/ep-standin", {"image": NEW_IMAGE})]
    out = result.structured_content
    assert out is not None and out["started"] and out["status"] == "done"
    assert out["previous_image"] == FIRST_IMAGE and out["image"] == NEW_IMAGE
    assert out["rollout"]["in_progress"] is False and out["rollout"]["stale_workers"] == 0
    assert out["rollout"]["endpoint_version"] == 2
    assert [w.version for w in runpod_standin.state.workers] == [2, 2]
    assert [p[0] for p in seen] == [50.0, 100.0]
    assert rows == [{"kind": "deploy", "image": NEW_IMAGE, "previous_image": FIRST_IMAGE, "status": "done"}]


async def test_rollback_restores_the_previous_image(tmp_path: Path, openai_standin, runpod_standin, era):
    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core:
        async with connect(core, era, deployer=standin_deployer(core, runpod_standin)) as client:
            await client.call_tool("deploy", {"image": NEW_IMAGE, "confirm": True})
            refused = await client.call_tool("rollback", {})
            assert refused.is_error and runpod_standin.state.endpoint["image"] == NEW_IMAGE
            result = await client.call_tool("rollback", {"confirm": True})
            again = await client.call_tool("rollback", {"confirm": True})
        rows = await deploy_rows(core)
    assert not result.is_error, text_of(result)
    assert runpod_standin.state.patches == [{"image": NEW_IMAGE}, {"image": FIRST_IMAGE}]
    assert runpod_standin.state.endpoint["image"] == FIRST_IMAGE
    assert result.structured_content and result.structured_content["status"] == "done"
    assert result.structured_content["image"] == FIRST_IMAGE
    assert rows == [
        {"kind": "deploy", "image": NEW_IMAGE, "previous_image": FIRST_IMAGE, "status": "rolled_back"},
        {"kind": "rollback", "image": FIRST_IMAGE, "previous_image": NEW_IMAGE, "status": "done"},
    ]
    assert again.is_error and "no deploy to roll back" in text_of(again)


async def test_deploy_sends_env_and_records_only_its_keys(tmp_path: Path, openai_standin, runpod_standin, era):
    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core:
        async with connect(core, era, deployer=standin_deployer(core, runpod_standin)) as client:
            await client.call_tool("deploy", {"image": NEW_IMAGE, "env": {"OLLAMA_KEEP_ALIVE": "-1"}, "confirm": True})
        detail = (await core.store.query("SELECT detail FROM deploys"))[0]["detail"]
    assert runpod_standin.state.patches == [{"image": NEW_IMAGE, "env": {"OLLAMA_KEEP_ALIVE": "-1"}}]
    assert "-1" not in detail


@pytest.mark.parametrize("action", ["accept", "decline"])
async def test_deploy_asks_clients_that_can_show_a_dialog(tmp_path: Path, openai_standin, runpod_standin, era, action):
    asked: list[str] = []

    async def dialog(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action=action, content={"approve": True} if action == "accept" else None)

    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core:
        deployer = standin_deployer(core, runpod_standin)
        async with connect(core, era, deployer=deployer, elicitation_callback=dialog) as client:
            result = await client.call_tool("deploy", {"image": NEW_IMAGE})
    assert asked and NEW_IMAGE in asked[0]
    assert result.structured_content is not None
    assert result.structured_content["started"] is (action == "accept")
    assert runpod_standin.state.patches == ([{"image": NEW_IMAGE}] if action == "accept" else [])


async def test_deploy_refuses_an_unpinned_image(tmp_path: Path, openai_standin, runpod_standin, era):
    async with (
        open_core(tmp_path, openai_standin, runpod=runpod_standin) as core,
        connect(core, era, deployer=standin_deployer(core, runpod_standin)) as client,
    ):
        result = await client.call_tool("deploy", {"image": "registry.example/pete-worker:latest", "confirm": True})
    assert result.is_error and ":latest" in text_of(result)
    assert runpod_standin.state.patches == []


async def test_deploy_with_a_refused_key_is_recorded_as_failed(tmp_path: Path, openai_standin, runpod_standin, era):
    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core:
        runpod_standin.state.fail_patch_with = 403
        async with connect(core, era, deployer=standin_deployer(core, runpod_standin)) as client:
            result = await client.call_tool("deploy", {"image": NEW_IMAGE, "confirm": True})
        rows = await deploy_rows(core)
    assert result.is_error and "403" in text_of(result)
    assert [r["status"] for r in rows] == ["failed"]


async def test_deploy_without_runpod_credentials_is_a_configuration_error(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool("deploy", {"image": NEW_IMAGE, "confirm": True})
    assert "RUNPOD_API_KEY" in caught.value.message


# --- the core pieces, without MCP -----------------------------------------------------------
@pytest.mark.parametrize(
    "image",
    ["registry.example/w:1.4.2", "w:1", f"registry.example:5000/w@sha256:{'a' * 64}", "ghcr.io/o/w:v2-cuda12.1"],
)
def test_pinned_images_are_accepted(image: str):
    check_image_pinned(image)


@pytest.mark.parametrize("image", ["", "registry.example/w", "registry.example:5000/w", "w:latest", "w :1"])
def test_unpinned_images_are_refused(image: str):
    with pytest.raises(InputError):
        check_image_pinned(image)


async def test_follow_stops_at_its_deadline_and_leaves_the_deploy_rolling_out(
    tmp_path: Path, openai_standin, runpod_standin
):
    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core:
        deployer = standin_deployer(core, runpod_standin)
        record = await deployer.start(NEW_IMAGE)
        state = await deployer.follow(record, timeout_s=0)
        rows = await deploy_rows(core)
        assert not state.finished and state.stale_workers == 1
        assert rows[0]["status"] == "rolling_out"
        finished = await deployer.follow(record, timeout_s=5)
        assert finished.finished and (await deploy_rows(core))[0]["status"] == "done"


async def test_deploy_announces_progress_on_the_event_bus(tmp_path: Path, openai_standin, runpod_standin):
    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core:
        deployer = standin_deployer(core, runpod_standin)
        async with core.events.subscribe() as sub:
            await deployer.follow(await deployer.start(NEW_IMAGE), timeout_s=5)
            statuses = [(await sub.get()).data["status"] for _ in range(4)]
    assert statuses[0] == "rolling_out" and statuses[-1] == "done"


async def test_rest_errors_name_the_setting_to_fix(tmp_path: Path, openai_standin, runpod_standin):
    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core:
        with pytest.raises(AuthError, match="RUNPOD_API_KEY"):
            await standin_deployer(core, runpod_standin, key="wrong").start(NEW_IMAGE)
    missing = RunPodRest(
        runpod_standin.http(), base_url=runpod_standin.base_url, endpoint_id="ep-gone", api_key=API_KEY
    )
    with pytest.raises(NotFound, match="RUNPOD_ENDPOINT_ID"):
        await missing.get_endpoint()


async def test_a_deploy_whose_rollout_cannot_be_followed_still_says_it_started(
    tmp_path: Path, openai_standin, runpod_standin, era
):
    runpod_standin.state.rate_limit_releases = True  # RunPod answers 429 while we follow
    async with (
        open_core(tmp_path, openai_standin, runpod=runpod_standin) as core,
        connect(core, era, deployer=standin_deployer(core, runpod_standin)) as client,
    ):
        result = await client.call_tool("deploy", {"image": NEW_IMAGE, "confirm": True})
    assert not result.is_error and result.structured_content is not None
    assert result.structured_content["started"] is True and result.structured_content["status"] == "rolling_out"
    assert "429" in result.structured_content["hint"] and "Wait 12 s" in result.structured_content["hint"]
    assert runpod_standin.state.patches == [{"image": NEW_IMAGE}]


async def test_endpoint_status_settles_a_rollout_that_outlived_the_deploy_call(
    tmp_path: Path, openai_standin, runpod_standin, era
):
    async with (
        open_core(tmp_path, openai_standin, runpod=runpod_standin) as core,
        connect(core, era, deployer=standin_deployer(core, runpod_standin)) as client,
    ):
        started = await client.call_tool("deploy", {"image": NEW_IMAGE, "confirm": True, "follow_s": 0})
        assert started.structured_content and started.structured_content["status"] == "rolling_out"
        assert "endpoint_status" in started.structured_content["hint"]
        first = await client.call_tool("endpoint_status", {})  # one more worker cycles: the rollout ends
        second = await client.call_tool("endpoint_status", {})
        rows = await deploy_rows(core)
    assert first.structured_content and first.structured_content["rollout"]["in_progress"] is False
    assert second.structured_content and second.structured_content["recent_deploys"][0]["status"] == "done"
    assert [r["status"] for r in rows] == ["done"]
