"""A simulated outage end to end: the local RunPod endpoint loses every worker while jobs queue.

Real pieces only: the local endpoint with a real runpod-SDK worker process, the RunPod
provider polled by the metrics service (`/health`, which submits no job), the alert engine
with its default rules, and Slack/GitHub stand-ins on loopback. The outage must produce
exactly one Slack message and one GitHub issue; recovery posts the recovery message and
closes the issue.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest

from pete_mcp.alerts import run_alerts
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import build_core
from pete_mcp.local.localpod import LocalPodConfig
from pete_mcp.metrics.service import run_metrics_service
from pete_mcp.routing.providers.runpod import RunPodProvider
from pete_mcp.runpod.client import RunPodClient
from tests.support.localpod import running_localpod
from tests.support.standins import Standins

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def wait_until(predicate: Callable[[], bool], timeout_s: float) -> None:
    """Poll `predicate` (state owned by other tasks and processes) until true, bounded by `timeout_s`."""
    with anyio.fail_after(timeout_s):
        while not predicate():  # noqa: ASYNC110 - the state changes in other processes, no event to wait on
            await anyio.sleep(0.05)


async def test_workers_down_while_jobs_queue_alerts_once_and_recovers(
    tmp_path: Path,
    localpod_config: Callable[..., LocalPodConfig],
    alert_standins: Standins,
    runpod_sdk: None,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "pete",
        slack_webhook_url=alert_standins.slack_url,  # type: ignore[arg-type]
        github_token=alert_standins.token,  # type: ignore[arg-type]
        github_repo=alert_standins.repo,
        github_api_url=alert_standins.url,
        metrics_poll_interval_s=0.1,
        alert_eval_interval_s=0.1,
        alert_queue_stall_s=0.5,
        alert_down_for_s=0.5,
    )
    registry = ModelRegistry({"echo": ModelSpec("echo", (Route("runpod", "echo"),), 2048, "echo")}, "echo")
    async with running_localpod(localpod_config(min_workers=1, max_workers=1)) as pod, httpx.AsyncClient() as http:
        client = RunPodClient(http, base_url=pod.url, endpoint_id=pod.endpoint_id, api_key=pod.api_key)
        provider = RunPodProvider(client, use_openai_route=False)
        core = build_core(settings, http=httpx.AsyncClient(), providers={"runpod": provider}, registry=registry)
        async with core, run_metrics_service(core), run_alerts(core):
            await wait_until(lambda: core.metrics.runpod is not None and core.metrics.runpod.serving_workers == 1, 30)
            assert alert_standins.slack_messages == [] and alert_standins.issues == {}

            # The outage: the only worker dies, its replacement is stuck in a long cold start, jobs queue.
            pod.faults.stall_cold_start(4.0, count=1)
            (worker,) = pod.state.workers.live()
            pod.kill_worker(worker_id=worker.id)
            queued = [await client.run({"chunks": ["hello"]}) for _ in range(2)]
            await wait_until(lambda: len(alert_standins.slack_messages) == 1 and alert_standins.issues != {}, 30)
            assert "no worker serves them" in alert_standins.slack_messages[0]["text"]
            assert [a["rule"] for a in core.metrics.snapshot()["alerts"]] == ["no_workers"]

            # Recovery: the replacement finishes its cold start and drains the queue.
            await wait_until(lambda: alert_standins.issues[1]["state"] == "closed", 60)
            assert core.metrics.runpod is not None and core.metrics.runpod.serving_workers >= 1
            with anyio.fail_after(30):  # and the queued jobs are answered
                for ref in queued:
                    while not (await client.status(ref.id)).status.is_terminal:  # noqa: ASYNC110 - another process
                        await anyio.sleep(0.05)
            await wait_until(lambda: len(alert_standins.slack_messages) >= 2, 5)

    assert len(alert_standins.slack_messages) == 2
    assert alert_standins.slack_messages[1]["text"].startswith(":white_check_mark:")
    assert alert_standins.created_issues() == 1
    (issue,) = alert_standins.issues.values()
    assert issue["state"] == "closed" and "no worker serves them" in issue["title"]
    assert alert_standins.comments[1][-1].startswith("Resolved")
