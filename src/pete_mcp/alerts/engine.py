"""The alert engine: evaluates the rules, de-duplicates, and tells every sink what changed.

Each evaluation collects the rules' findings. A new finding waits `for_s` (pending), then
fires once; while it keeps holding it is silent except for a repeat every `repeat_s`; when it
stops holding it resolves once. Every sink gets every notice; a sink that fails is logged
and never stops the others. Rules are evaluated every `interval_s` and right after events
that can change them (provider up/down, failover, deploy).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

import anyio
import httpx
from anyio.abc import TaskStatus

from pete_mcp.core import Event, EventBus, PeteError, Settings, Subscription
from pete_mcp.metrics import Metrics

from .base import Alert, AlertSink, Finding, Notice
from .github import GitHubIssueSink
from .mcp_notify import EventBusSink
from .rules import Rule, default_rules
from .slack import SlackWebhookSink


class AlertHost(Protocol):
    """What the engine reads from the gateway core (a protocol: alerts sit below the gateway)."""

    settings: Settings
    http: httpx.AsyncClient
    events: EventBus
    metrics: Metrics


__all__ = ["AlertEngine", "run_alerts", "sinks_from_settings"]

log = logging.getLogger(__name__)

_EVALUATE_ON = ("provider.", "failover.", "deploy.")


class AlertEngine:
    def __init__(
        self,
        rules: Sequence[Rule],
        sinks: Sequence[AlertSink],
        metrics: Metrics,
        *,
        repeat_s: float = 3600.0,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules = list(rules)
        self.sinks = list(sinks)
        self.metrics = metrics
        self.repeat_s = repeat_s
        self.interval_s = interval_s
        self.clock = clock
        self.active: dict[str, Alert] = {}
        self.pending: dict[str, float] = {}
        self.delivery_failures = 0
        self._lock = anyio.Lock()

    def observe(self, event: Event) -> None:
        for rule in self.rules:
            rule.observe(event)

    async def evaluate(self) -> list[Notice]:
        """One pass over the rules; returns (and delivers) the notices it produced."""
        async with self._lock:
            now = self.clock()
            findings: dict[str, tuple[Finding, float]] = {}
            for rule in self.rules:
                try:
                    for finding in rule.check(self.metrics, now):
                        findings[finding.key] = (finding, rule.for_s)
                except Exception:
                    log.exception("alert rule %s failed", rule.name)
            notices = self._transitions(findings, now)
            if notices:
                self.metrics.set_alerts(a.entry() for a in self.active.values())
            for notice in notices:
                await self._deliver(notice)
            return notices

    def _transitions(self, findings: dict[str, tuple[Finding, float]], now: float) -> list[Notice]:
        notices: list[Notice] = []
        for key, (finding, for_s) in findings.items():
            alert = self.active.get(key)
            if alert is not None:
                alert.finding = finding
                if now - alert.last_notified >= self.repeat_s:
                    alert.last_notified = now
                    notices.append(Notice("repeat", alert, now))
                continue
            first = self.pending.setdefault(key, now)
            if now - first >= for_s:
                del self.pending[key]
                alert = self.active[key] = Alert(finding, since=first, fired_at=now, last_notified=now)
                notices.append(Notice("fired", alert, now))
        for key in [k for k in self.pending if k not in findings]:
            del self.pending[key]
        for key in [k for k in self.active if k not in findings]:
            alert = self.active.pop(key)
            alert.resolved_at = now
            notices.append(Notice("resolved", alert, now))
        return notices

    async def _deliver(self, notice: Notice) -> None:
        log.warning("alert %s: %s — %s", notice.kind, notice.alert.finding.title, notice.alert.finding.detail)
        for sink in self.sinks:
            try:
                await sink.send(notice)
            except PeteError as exc:
                self.delivery_failures += 1
                log.warning("alert sink %s failed: %s", sink.name, exc)
            except Exception as exc:  # a sink bug must not stop the others; never log its args (secrets)
                self.delivery_failures += 1
                log.warning("alert sink %s failed: %s", sink.name, type(exc).__name__)

    # --- running ---------------------------------------------------------------------------
    async def run(self, events: EventBus, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Evaluate every `interval_s` and after relevant events; started once events are followed."""
        async with events.subscribe() as sub, anyio.create_task_group() as tg:
            tg.start_soon(self._follow, sub)
            task_status.started()
            while True:
                await self.evaluate()
                await anyio.sleep(self.interval_s)

    async def _follow(self, sub: Subscription) -> None:
        async for event in sub:
            self.observe(event)
            if event.kind.startswith(_EVALUATE_ON):
                await self.evaluate()


def sinks_from_settings(settings: Settings, http: httpx.AsyncClient, events: EventBus) -> list[AlertSink]:
    """The MCP/event sink always; Slack and GitHub when their settings are present."""
    sinks: list[AlertSink] = [EventBusSink(events)]
    if settings.slack_webhook_url is not None:
        sinks.append(SlackWebhookSink(http, settings.slack_webhook_url.get_secret_value()))
    if settings.github_token is not None and settings.github_repo:
        labels = tuple(label.strip() for label in settings.github_alert_labels.split(",") if label.strip())
        sinks.append(
            GitHubIssueSink(
                http,
                repo=settings.github_repo,
                token=settings.github_token.get_secret_value(),
                api_url=settings.github_api_url,
                labels=labels,
            )
        )
    elif settings.github_token is not None or settings.github_repo:
        log.warning("GitHub alerts need both GITHUB_TOKEN and GITHUB_REPO; GitHub alerts are off.")
    return sinks


@asynccontextmanager
async def run_alerts(
    core: AlertHost, *, rules: Sequence[Rule] | None = None, sinks: Sequence[AlertSink] | None = None
) -> AsyncIterator[AlertEngine]:
    """Run the alert engine over `core` while the context is open."""
    settings = core.settings
    engine = AlertEngine(
        rules if rules is not None else default_rules(settings),
        sinks if sinks is not None else sinks_from_settings(settings, core.http, core.events),
        core.metrics,
        repeat_s=settings.alert_repeat_s,
        interval_s=settings.alert_eval_interval_s,
    )
    async with anyio.create_task_group() as tg:
        await tg.start(engine.run, core.events)
        try:
            yield engine
        finally:
            tg.cancel_scope.cancel()
