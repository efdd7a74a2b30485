"""The quality gate (EVAL_MIN_SCORE) on switches and deploys, and the saved scores the faces show."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.types import TextContent

from pete_mcp.app import build_app
from pete_mcp.core.eval_scores import EvalRunRow, EvalScoreBook
from pete_mcp.faces.dashboard import dashboard_face
from pete_mcp.ops import deploy_gate
from tests.support.mcp import connect, open_core, standin_deployer
from tests.support.runpod_rest_standin import RunPodStandIn

pytestmark = pytest.mark.anyio


def text_of(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def row(model: str, score: float, failing: list[str] | None = None) -> EvalRunRow:
    return EvalRunRow(
        "run-1", 0.0, model, "tenant_calls", 1, 62, 20, score, {"ticket": 0.25, "no_markdown": 1.0}, failing or []
    )


async def test_switch_is_refused_with_the_failing_checks_when_the_score_is_below_the_minimum(
    tmp_path: Path, openai_standin: Any, era: str
) -> None:
    async with open_core(tmp_path, openai_standin, eval_min_score=0.7) as core, connect(core, era) as client:
        await EvalScoreBook(core.store).record(row("backup", 0.41, ["maint-kitchen-leak: ticket"]))
        refused = await client.call_tool("switch_model", {"name": "backup"})
        assert refused.is_error
        message = text_of(refused)
        assert "0.41" in message and "ticket 25%" in message and "maint-kitchen-leak: ticket" in message
        assert core.active_alias == "jamie"
        history = await core.switch_history()
        assert history[0].ok is False and "EVAL_MIN_SCORE" in history[0].detail
        await EvalScoreBook(core.store).record(row("backup", 0.9))
        ok = await client.call_tool("switch_model", {"name": "backup"})
        assert not ok.is_error and core.active_alias == "backup"


async def test_the_gate_is_off_by_default_and_a_missing_run_passes_unless_required(
    tmp_path: Path, openai_standin: Any, era: str
) -> None:
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        await EvalScoreBook(core.store).record(row("backup", 0.01))
        assert not (await client.call_tool("switch_model", {"name": "backup"})).is_error
    async with open_core(tmp_path / "b", openai_standin, eval_min_score=0.5) as core, connect(core, era) as client:
        assert not (await client.call_tool("switch_model", {"name": "backup"})).is_error
    options = {"eval_min_score": 0.5, "eval_require_run": True}
    async with open_core(tmp_path / "c", openai_standin, **options) as core, connect(core, era) as client:
        refused = await client.call_tool("switch_model", {"name": "backup"})
        assert refused.is_error and "no saved eval run" in text_of(refused)


async def test_deploy_is_refused_by_the_gate_and_nothing_reaches_runpod(
    tmp_path: Path, openai_standin: Any, runpod_standin: RunPodStandIn, era: str
) -> None:
    async with open_core(tmp_path, openai_standin, runpod=runpod_standin, eval_min_score=0.6) as core:
        deployer = standin_deployer(core, runpod_standin)
        deployer.gate = deploy_gate(core)
        await EvalScoreBook(core.store).record(row("jamie", 0.3, ["privacy-x: no_other_tenant"]))
        async with connect(core, era, deployer=deployer) as client:
            result = await client.call_tool(
                "deploy", {"image": "registry.example/pete-worker:2.0.0", "approval": "deploy", "confirm": True}
            )
        assert result.is_error and "privacy-x: no_other_tenant" in text_of(result)
        assert runpod_standin.state.patches == []
        assert await core.store.query("SELECT * FROM deploys") == []


async def test_latest_scores_reach_the_mcp_tool_and_the_dashboard_api(
    tmp_path: Path, openai_standin: Any, era: str
) -> None:
    async with open_core(tmp_path, openai_standin, eval_min_score=0.5) as core:
        book = EvalScoreBook(core.store)
        await book.record(row("jamie", 0.5))
        await book.record(row("jamie", 0.75))
        await book.record(row("backup", 0.6))
        async with connect(core, era) as client:
            result = await client.call_tool("eval_scores", {})
        assert not result.is_error
        out = result.structured_content or {}
        assert {r["model"]: r["score"] for r in out["results"]} == {"backup": 0.6, "jamie": 0.75}
        assert out["min_score"] == 0.5
        app = build_app(core, faces=[dashboard_face(core, services=False)], manage_core=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pete.test") as http:
            api = (await http.get("/api/evals/latest")).json()
        assert [(r["model"], r["score"]) for r in api["latest"]] == [("backup", 0.6), ("jamie", 0.75)]
        assert api["gate"]["min_score"] == 0.5


async def test_run_eval_refuses_unknown_models_and_reports_a_failed_run(tmp_path: Path, openai_standin: Any) -> None:
    from mcp.server import MCPServer

    from pete_mcp.faces.mcp.tools_eval import register_eval_tools

    async with open_core(tmp_path, openai_standin) as core:
        server = MCPServer("t")
        register_eval_tools(server, core, command=[sys.executable, "-c", "import sys; sys.exit('no models here')"])
        from mcp.client import Client

        async with Client(server, raise_exceptions=True) as client:
            unknown = await client.call_tool("run_eval", {"models": ["nope"]})
            failed = await client.call_tool("run_eval", {"models": ["jamie"], "limit": 1})
        assert unknown.is_error and "nope" in text_of(unknown) and "jamie" in text_of(unknown)
        assert failed.is_error and "no models here" in text_of(failed)
