"""The MCP tools through the SDK's in-memory client, in both protocol eras (2026-07-28 and 2025 handshake)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.types import ElicitResult, TextContent

from tests.support.mcp import REPLY_WORDS, OpenAIStandIn, connect, open_core, standin_deployer

pytestmark = pytest.mark.anyio

REPLY = "".join(REPLY_WORDS)


def text_of(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def test_lists_every_tool_with_schemas_and_honest_annotations(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {
        "run_prompt",
        "get_job",
        "cancel_job",
        "switch_model",
        "list_models",
        "health",
        "deploy",
        "rollback",
        "endpoint_status",
        "purge_queue",
        "list_desk",
        "close_desk_item",
        "list_workers",
        "worker_logs",
        "live_status",
        "run_eval",
        "eval_scores",
    }
    assert all(t.output_schema for t in tools.values())
    for name in ("health", "list_models", "get_job", "endpoint_status", "list_desk"):
        annotations = tools[name].annotations
        assert annotations and annotations.read_only_hint is True
    for name in ("deploy", "rollback", "purge_queue"):
        annotations = tools[name].annotations
        assert annotations and annotations.destructive_hint is True and annotations.read_only_hint is False
    assert tools["switch_model"].annotations and tools["switch_model"].annotations.idempotent_hint is True
    close = tools["close_desk_item"].annotations
    assert close and close.idempotent_hint is True and close.destructive_hint is False
    assert "approval" not in tools["deploy"].input_schema["properties"]  # filled by the resolver, not the model


async def test_run_prompt_returns_the_reply_with_usage_timings_and_progress(tmp_path: Path, openai_standin, era):
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        result = await client.call_tool(
            "run_prompt", {"prompt": "When is rent due?", "max_tokens": 32}, progress_callback=on_progress
        )
    assert not result.is_error, text_of(result)
    out = result.structured_content
    assert out is not None
    assert out["status"] == "completed" and out["text"] == REPLY
    assert (out["model"], out["provider"], out["provider_model"]) == ("jamie", "local", "tiny")
    assert out["usage"] == {"prompt_tokens": 12, "completion_tokens": len(REPLY_WORDS)}
    assert out["total_s"] is not None and out["ttft_s"] is not None
    assert openai_standin.requests[0]["messages"][0] == {"role": "system", "content": "You are Jamie."}
    assert seen[0][0] == 0 and any(done >= 1 and total == 32 for done, total, _ in seen)


async def test_run_prompt_for_an_unknown_model_tells_the_model_what_exists(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        result = await client.call_tool("run_prompt", {"prompt": "hi", "model": "nope"})
    assert result.is_error
    assert "unknown model 'nope'" in text_of(result) and "jamie, backup" in text_of(result)


async def test_run_prompt_with_a_refused_key_says_which_key(tmp_path: Path, era):
    standin = OpenAIStandIn(status=401)
    async with open_core(tmp_path, standin) as core, connect(core, era) as client:
        result = await client.call_tool("run_prompt", {"prompt": "hi"})
    assert result.is_error and "refused the API key (401)" in text_of(result)


async def test_run_prompt_needs_exactly_one_of_prompt_or_messages(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        neither = await client.call_tool("run_prompt", {})
        both = await client.call_tool("run_prompt", {"prompt": "a", "messages": [{"role": "user", "content": "b"}]})
        messages = await client.call_tool("run_prompt", {"messages": [{"role": "user", "content": "b"}]})
    assert neither.is_error and both.is_error and "exactly one" in text_of(neither)
    assert not messages.is_error and messages.structured_content and messages.structured_content["text"] == REPLY


async def test_a_cold_start_past_the_budget_returns_a_job_that_get_job_completes(tmp_path: Path, openai_standin, era):
    gate = openai_standin.hold_first_token()
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        with anyio.fail_after(10):
            first = await client.call_tool("run_prompt", {"prompt": "hi", "time_budget_s": 1})
        assert not first.is_error, text_of(first)
        pending = first.structured_content
        assert pending is not None and pending["status"] == "waiting" and pending["text"] == ""
        assert "get_job" in pending["hint"] and pending["job_id"] in pending["hint"]

        still = await client.call_tool("get_job", {"job_id": pending["job_id"], "wait_s": 0})
        assert still.structured_content and still.structured_content["status"] == "waiting"

        gate.set()  # the worker is up
        with anyio.fail_after(10):
            done = await client.call_tool("get_job", {"job_id": pending["job_id"], "wait_s": 10})
    assert done.structured_content is not None
    assert done.structured_content["status"] == "completed" and done.structured_content["text"] == REPLY


async def test_cancel_job_stops_a_job_that_has_not_answered(tmp_path: Path, openai_standin, era):
    openai_standin.hold_first_token()  # never released
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        started = await client.call_tool("run_prompt", {"prompt": "hi", "time_budget_s": 1})
        assert started.structured_content is not None
        job_id = started.structured_content["job_id"]
        cancelled = await client.call_tool("cancel_job", {"job_id": job_id})
        after = await client.call_tool("get_job", {"job_id": job_id, "wait_s": 0})
        assert core.metrics.active_jobs == 0
    assert cancelled.structured_content and cancelled.structured_content["status"] == "cancelled"
    assert after.structured_content and after.structured_content["status"] == "cancelled"


async def test_get_job_for_an_unknown_id_is_a_tool_error(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        result = await client.call_tool("get_job", {"job_id": "job-nope"})
    assert result.is_error and "no job 'job-nope'" in text_of(result)


async def test_switch_model_reports_previous_and_active_and_persists(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        result = await client.call_tool("switch_model", {"name": "backup"})
        listed = await client.call_tool("list_models", {})
        persisted = await core.store.get_state("active_model")
    assert result.structured_content is not None
    assert result.structured_content["previous"] == "jamie" and result.structured_content["active"] == "backup"
    assert result.structured_content["warmup_s"] is not None
    assert persisted == "backup"
    assert listed.structured_content and listed.structured_content["active"] == "backup"


async def test_switch_model_to_an_unknown_alias_lists_the_registered_ones(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        result = await client.call_tool("switch_model", {"name": "gpt-9"})
        assert core.active_alias == "jamie"
    assert result.is_error and "Unknown model 'gpt-9'" in text_of(result) and "backup" in text_of(result)


async def test_list_models_describes_every_model(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        await client.call_tool("run_prompt", {"prompt": "hi"})
        result = await client.call_tool("list_models", {})
    assert result.structured_content is not None
    models = {m["alias"]: m for m in result.structured_content["models"]}
    assert models["jamie"]["active"] is True and models["backup"]["active"] is False
    assert (models["jamie"]["provider_model"], models["jamie"]["context_window"]) == ("tiny", 2048)
    assert models["backup"]["provider_model"] == "tiny-2"
    assert models["jamie"]["warm"] is True and models["backup"]["warm"] is None


def checks_of(result: Any) -> dict[str, dict[str, Any]]:
    assert result.structured_content is not None, text_of(result)
    return {c["name"]: c for c in result.structured_content["checks"]}


async def test_health_without_runpod_reports_it_unconfigured_and_probes_the_model(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        result = await client.call_tool("health", {"probe": True})
    checks = checks_of(result)
    runpod = checks["runpod_endpoint"]
    assert runpod["status"] == "skip" and "RunPod not configured" in runpod["detail"]
    assert "RUNPOD_API_KEY" in checks["runpod_endpoint"]["hint"]
    assert checks["active_model"]["status"] == "ok" and "one-token probe" in checks["active_model"]["detail"]
    assert checks["storage"]["status"] == "ok"
    assert checks["alert_sinks"]["status"] == "warn" and "SLACK_WEBHOOK_URL" in checks["alert_sinks"]["hint"]
    assert checks["fallback_providers"]["status"] == "warn"
    assert result.structured_content and result.structured_content["figures"]["active_model"] == "jamie"
    assert result.structured_content["status"] == "degraded"


async def test_health_with_a_refused_model_key_fails_the_probe_with_a_hint(tmp_path: Path, era):
    async with open_core(tmp_path, OpenAIStandIn(status=401)) as core, connect(core, era) as client:
        result = await client.call_tool("health", {"probe": True})
    checks = checks_of(result)
    assert checks["active_model"]["status"] == "fail" and "401" in checks["active_model"]["detail"]
    assert "API_KEY" in checks["active_model"]["hint"]
    assert result.structured_content and result.structured_content["status"] == "failing"


async def test_health_reads_runpod_workers_and_queue(tmp_path: Path, openai_standin, runpod_standin, era):
    runpod_standin.state.in_queue = 1
    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core, connect(core, era) as client:
        result = await client.call_tool("health", {"probe": False})
    checks = checks_of(result)
    assert checks["runpod_endpoint"]["status"] == "ok"
    assert checks["runpod_workers"]["status"] == "ok" and "idle 2" in checks["runpod_workers"]["detail"]
    assert checks["runpod_queue"]["status"] == "ok" and "1 queued" in checks["runpod_queue"]["detail"]
    assert checks["active_model"]["status"] == "ok" and "not probed" in checks["active_model"]["detail"]
    assert result.structured_content and result.structured_content["figures"]["workers_idle"] == 2


async def test_health_with_a_refused_runpod_key_points_at_runpod_api_key(
    tmp_path: Path, openai_standin, runpod_standin, era
):
    async with (
        open_core(tmp_path, openai_standin, runpod=runpod_standin, runpod_key="wrong") as core,
        connect(core, era) as client,
    ):
        result = await client.call_tool("health", {"probe": False})
    checks = checks_of(result)
    assert checks["runpod_endpoint"]["status"] == "fail" and "401" in checks["runpod_endpoint"]["detail"]
    assert "RUNPOD_API_KEY" in checks["runpod_endpoint"]["hint"]
    assert checks["runpod_workers"]["status"] == "fail"


async def test_endpoint_status_without_runpod_says_so(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        result = await client.call_tool("endpoint_status", {})
    assert result.structured_content is not None
    assert result.structured_content["configured"] is False and "RUNPOD_API_KEY" in result.structured_content["hint"]


async def test_endpoint_status_shows_workers_image_and_rollout(tmp_path: Path, openai_standin, runpod_standin, era):
    async with (
        open_core(tmp_path, openai_standin, runpod=runpod_standin) as core,
        connect(core, era, deployer=standin_deployer(core, runpod_standin)) as client,
    ):
        result = await client.call_tool("endpoint_status", {})
    out = result.structured_content
    assert out is not None and out["configured"] and out["reachable"], out
    assert out["endpoint"] == "ep-standin" and out["workers"]["idle"] == 2
    assert out["image"] == "registry.example/pete-worker:1.0.0"
    assert out["rollout"]["in_progress"] is False and out["rollout"]["stale_workers"] == 0


async def test_purge_queue_changes_nothing_without_confirmation(tmp_path: Path, openai_standin, runpod_standin, era):
    runpod_standin.state.in_queue = 3
    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core, connect(core, era) as client:
        refused = await client.call_tool("purge_queue", {})
        assert refused.is_error and "confirm=true" in text_of(refused)
        assert runpod_standin.state.in_queue == 3
        done = await client.call_tool("purge_queue", {"confirm": True})
    assert done.structured_content == {"purged": True, "removed": 3, "status": "completed"}
    assert runpod_standin.state.in_queue == 0


async def test_purge_queue_without_runpod_is_a_tool_error(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        result = await client.call_tool("purge_queue", {"confirm": True})
    assert result.is_error and "RunPod not configured" in text_of(result)


@pytest.mark.parametrize("action", ["accept", "decline"])
async def test_purge_queue_asks_clients_that_can_show_a_dialog(
    tmp_path: Path, openai_standin, runpod_standin, era, action
):
    asked: list[str] = []

    async def dialog(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action=action, content={"approve": True} if action == "accept" else None)

    runpod_standin.state.in_queue = 2
    async with (
        open_core(tmp_path, openai_standin, runpod=runpod_standin) as core,
        connect(core, era, elicitation_callback=dialog) as client,
    ):
        result = await client.call_tool("purge_queue", {})
    assert asked and "queued" in asked[0]
    assert result.structured_content is not None
    assert result.structured_content["purged"] is (action == "accept")
    assert runpod_standin.state.in_queue == (0 if action == "accept" else 2)


async def test_endpoint_status_and_purge_with_a_refused_runpod_key_say_so(
    tmp_path: Path, openai_standin, runpod_standin, era
):
    async with (
        open_core(tmp_path, openai_standin, runpod=runpod_standin, runpod_key="wrong") as core,
        connect(core, era, deployer=standin_deployer(core, runpod_standin, key="wrong")) as client,
    ):
        status = await client.call_tool("endpoint_status", {})
        purge = await client.call_tool("purge_queue", {"confirm": True})
    out = status.structured_content
    assert out is not None and out["configured"] and not out["reachable"]
    assert "401" in out["detail"] and "RUNPOD_API_KEY" in out["detail"] + (out["hint"] or "")
    assert purge.is_error and "401" in text_of(purge)
