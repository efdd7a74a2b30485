"""The system checks behind the `health` tool and `pete doctor`: each verdict, and its fix hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from pete_mcp.cli.main import main
from pete_mcp.local.model_server import pick_free_port
from pete_mcp.ops.doctor import doctor_report
from pete_mcp.ops.health import key_figures, run_checks
from tests.support.mcp import OpenAIStandIn, open_core

pytestmark = pytest.mark.anyio


async def test_every_check_has_a_verdict_and_failures_have_hints(tmp_path: Path, openai_standin, runpod_standin):
    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core:
        report = await run_checks(core)
    names = [c.name for c in report.checks]
    assert names == [
        "runpod_endpoint",
        "runpod_workers",
        "runpod_queue",
        "active_model",
        "fallback_providers",
        "storage",
        "alert_sinks",
    ]
    assert all(c.hint for c in report.checks if c.status in ("warn", "fail"))
    assert report.figures["workers_idle"] == 2 and report.figures["queue_depth"] == 0


async def test_no_workers_with_jobs_queued_fails_the_queue_check(tmp_path: Path, openai_standin, runpod_standin):
    runpod_standin.state.workers.clear()
    runpod_standin.state.in_queue = 4
    async with open_core(tmp_path, openai_standin, runpod=runpod_standin) as core:
        report = await run_checks(core, probe=False)
    checks = {c.name: c for c in report.checks}
    assert checks["runpod_queue"].status == "fail" and "no worker" in checks["runpod_queue"].detail
    assert checks["runpod_workers"].status == "warn" and "scaled to zero" in checks["runpod_workers"].detail
    assert report.status == "failing"


async def test_a_probe_past_its_budget_fails_with_a_cold_start_hint(tmp_path: Path):
    standin = OpenAIStandIn()
    standin.hold_first_token()
    async with open_core(tmp_path, standin) as core:
        report = await run_checks(core, probe=True, probe_budget_s=0.2)
    probe = next(c for c in report.checks if c.name == "active_model")
    assert probe.status == "fail" and "no token within 0.2 s" in probe.detail and "cold start" in (probe.hint or "")


async def test_configured_alert_sinks_pass(tmp_path: Path, openai_standin):
    async with open_core(
        tmp_path,
        openai_standin,
        slack_webhook_url=SecretStr("https://hooks.slack.example/T/B/x"),
        github_token=SecretStr("ghp_x"),
        github_repo="pete/ops",
    ) as core:
        report = await run_checks(core, probe=False)
    sinks = next(c for c in report.checks if c.name == "alert_sinks")
    assert sinks.status == "ok" and sinks.detail == "Slack, GitHub issues on pete/ops"
    assert "ghp_x" not in str(report)


async def test_doctor_prints_each_check_with_its_fix(tmp_path: Path, openai_standin):
    async with open_core(tmp_path, openai_standin) as core:
        text, status = await doctor_report(core)
    assert status == 0  # warnings only
    assert "✓ active_model" in text and "! alert_sinks" in text and "fix: Set SLACK_WEBHOOK_URL" in text
    assert "- runpod_endpoint" in text


def test_key_figures_read_old_and_new_snapshot_shapes():
    assert key_figures({"requests": 3, "errors": 1, "active_jobs": 0}) == {"requests": 3, "errors": 1, "active_jobs": 0}
    grown = {"totals": {"requests": 5, "ttft": {"p50": 0.2, "p95": 0.4}}, "live_calls": 1}
    assert key_figures(grown) == {"requests": 5, "ttft_p50_s": 0.2, "ttft_p95_s": 0.4, "live_calls": 1}


def test_pete_doctor_exits_1_and_names_the_fix_when_runpod_is_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    port = pick_free_port()  # nothing listens there: no local endpoint, no gateway
    monkeypatch.setenv("LOCAL_ENDPOINT_PORT", str(port))
    monkeypatch.setenv("PETE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 1, result.output
    assert "checking a core built in-process" in result.stderr
    assert "✗ runpod_endpoint" in result.output and "fix:" in result.output
