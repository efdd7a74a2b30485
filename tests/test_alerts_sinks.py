"""Alert sinks against local Slack and GitHub stand-ins that follow the published API shapes."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from pete_mcp.alerts import (
    Alert,
    AlertDeliveryError,
    EventBusSink,
    Finding,
    GitHubIssueSink,
    Notice,
    SlackWebhookSink,
    sinks_from_settings,
)
from pete_mcp.core.errors import ConfigError
from pete_mcp.core.events import EventBus
from pete_mcp.core.settings import Settings
from tests.support.standins import Standins

pytestmark = pytest.mark.anyio


def alert(key: str = "no_workers:runpod") -> Alert:
    finding = Finding(key, "no_workers", "critical", "RunPod jobs are queued but no worker serves them", "3 queued.")
    now = time.time()
    return Alert(finding, since=now - 5, fired_at=now, last_notified=now)


def notice(kind: str, a: Alert) -> Notice:
    return Notice(kind, a, time.time())  # type: ignore[arg-type]


async def test_slack_gets_a_block_kit_message_and_a_recovery(alert_standins: Standins) -> None:
    a = alert()
    async with httpx.AsyncClient() as http:
        sink = SlackWebhookSink(http, alert_standins.slack_url)
        await sink.send(notice("fired", a))
        await sink.send(notice("resolved", a))
    fired, resolved = alert_standins.slack_messages
    assert "RunPod jobs are queued" in fired["text"]
    assert [b["type"] for b in fired["blocks"]] == ["header", "section", "context"]
    assert "`no_workers`" in fired["blocks"][2]["elements"][0]["text"]
    assert resolved["text"].startswith(":white_check_mark:") and "Resolved" in resolved["blocks"][0]["text"]["text"]
    assert "Recovered after" in resolved["blocks"][1]["text"]["text"]


async def test_a_slack_refusal_never_shows_the_webhook_url(alert_standins: Standins) -> None:
    secret_url = alert_standins.url + "/not/a/webhook"
    async with httpx.AsyncClient() as http:
        with pytest.raises(AlertDeliveryError) as info:
            await SlackWebhookSink(http, secret_url).send(notice("fired", alert()))
    assert "404" in str(info.value) and secret_url not in str(info.value)


async def test_github_opens_one_issue_comments_on_repeats_and_closes_on_recovery(alert_standins: Standins) -> None:
    a = alert()
    async with httpx.AsyncClient() as http:
        sink = GitHubIssueSink(http, repo=alert_standins.repo, token=alert_standins.token, api_url=alert_standins.url)
        await sink.send(notice("fired", a))
        await sink.send(notice("repeat", a))
        await sink.send(notice("resolved", a))
    (issue,) = alert_standins.issues.values()
    assert issue["title"] == "[pete] RunPod jobs are queued but no worker serves them"
    assert issue["labels"] == [{"name": "pete-alert"}]
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"
    still, resolved = alert_standins.comments[issue["number"]]
    assert still.startswith("Still firing") and resolved.startswith("Resolved")


async def test_after_a_restart_a_firing_alert_finds_its_open_issue(alert_standins: Standins) -> None:
    a = alert()
    async with httpx.AsyncClient() as http:

        def sink() -> GitHubIssueSink:
            return GitHubIssueSink(
                http, repo=alert_standins.repo, token=alert_standins.token, api_url=alert_standins.url
            )

        await sink().send(notice("fired", a))
        restarted = sink()  # forgot the issue number
        await restarted.send(notice("fired", a))
        await restarted.send(notice("resolved", a))
        await sink().send(notice("fired", alert("deploy_failed")))
    assert alert_standins.created_issues() == 2
    assert alert_standins.issues[1]["state"] == "closed" and alert_standins.issues[2]["state"] == "open"


async def test_a_bad_github_token_is_reported_without_the_token(
    alert_standins: Standins, caplog: pytest.LogCaptureFixture
) -> None:
    async with httpx.AsyncClient() as http:
        sink = GitHubIssueSink(http, repo=alert_standins.repo, token="ghp_wrong_secret", api_url=alert_standins.url)
        with pytest.raises(AlertDeliveryError) as info:
            await sink.send(notice("fired", alert()))
    assert "401" in str(info.value) and "Bad credentials" in str(info.value) and "GITHUB_TOKEN" in str(info.value)
    assert "ghp_wrong_secret" not in str(info.value)


def test_github_repo_must_be_owner_slash_name() -> None:
    with pytest.raises(ConfigError, match="owner/name"):
        GitHubIssueSink(httpx.AsyncClient(), repo="just-a-name", token="t")


async def test_the_event_sink_publishes_alert_events_for_mcp_subscribers() -> None:
    events = EventBus()
    a = alert()
    async with events.subscribe() as sub:
        await EventBusSink(events).send(notice("fired", a))
        await EventBusSink(events).send(notice("resolved", a))
        fired, resolved = await sub.get(), await sub.get()
    assert (fired.kind, resolved.kind) == ("alert.fired", "alert.resolved")
    assert fired.data["key"] == "no_workers:runpod" and fired.data["severity"] == "critical"


def test_sinks_come_from_settings(caplog: pytest.LogCaptureFixture) -> None:
    http = httpx.AsyncClient()
    assert [s.name for s in sinks_from_settings(Settings(), http, EventBus())] == ["events"]
    full = Settings(
        slack_webhook_url="https://hooks.slack.com/services/T/B/X",  # type: ignore[arg-type]
        github_token="ghp_x",  # type: ignore[arg-type]
        github_repo="o/r",
    )
    assert [s.name for s in sinks_from_settings(full, http, EventBus())] == ["events", "slack", "github"]
    with caplog.at_level(logging.WARNING):
        half = sinks_from_settings(Settings(github_token="ghp_x"), http, EventBus())  # type: ignore[arg-type]
    assert [s.name for s in half] == ["events"] and "GITHUB_REPO" in caplog.text
