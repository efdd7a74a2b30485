"""The alert engine: evaluates the rules, de-duplicates, and tells every sink what changed.

Each evaluation collects the rules' findings. A new finding waits `for_s` (pending), then
fires once; while it keeps holding it is silent except for a repeat every `repeat_s`; when it
stops holding it resolves once. Every sink gets every notice; a sink that fails is logged
and never stops the others. Rules are evaluated every `interval_s` and right after events
that can change them (provider up/down, failover, deploy).

With several replicas on one database, one leader evaluates and pages (`Leadership`: an
advisory lock on PostgreSQL, always held on SQLite); followers keep asking every interval and
take over when the leader dies. The firing alerts are kept in the store (`AlertBook`), so a new
leader neither re-pages what is already firing nor forgets to send its resolution.
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

from pete_mcp.core import Event, EventBus, PeteError, Settings, Store, Subscription
from pete_mcp.core.storage import AlwaysLeader, Leadership
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
    store: Store


__all__ = ["AlertBook", "AlertEngine", "run_alerts", "sinks_from_settings"]

ALERTS_KEY = "alerts_firing"


class AlertBook:
    """The firing alerts, kept in the store's state so the next leader carries them on."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def load(self) -> dict[str, Alert]:
        rows = await self.store.get_state(ALERTS_KEY) or []
        alerts: dict[str, Alert] = {}
        for row in rows:
            finding = Finding(row["key"], row["rule"], row["severity"], row["title"], row["detail"])
            alerts[finding.key] = Alert(finding, row["since"], row["fired_at"], row["last_notified"])
        return alerts

    async def save(self, alerts: dict[str, Alert]) -> None:
        rows = [
            {
                "key": a.finding.key,
                "rule": a.finding.rule,
                "severity": a.finding.severity,
                "title": a.finding.title,
                "detail": a.finding.detail,
                "since": a.since,
                "fired_at": a.fired_at,
                "last_notified": a.last_notified,
            }
            for a in alerts.values()
        ]
        await self.store.set_state(ALERTS_KEY, rows)


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
        leadership: Leadership | None = None,
        book: AlertBook | None = None,
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
        self.leadership: Leadership = leadership or AlwaysLeader()
        self.book = book
        self.leading = False
        self._lock = anyio.Lock()

    def observe(self, event: Event) -> None:
        for rule in self.rules:
            rule.observe(event)

    async def evaluate(self) -> list[Notice]:
        """One pass over the rules; returns (and delivers) the notices it produced."""
        async with self._lock:
            leading = await self._lead()
            now = self.clock()
            findings: dict[str, tuple[Finding, float]] = {}
            for rule in self.rules if leading else [r for r in self.rules if _per_replica(r)]:
                try:
                    for finding in rule.check(self.metrics, now):
                        findings[finding.key] = (finding, rule.for_s)
                except Exception:
                    log.exception("alert rule %s failed", rule.name)
            notices = self._transitions(findings, now)
            if notices:
                self.metrics.set_alerts(a.entry() for a in self.active.values())
            if leading and notices and self.book is not None:
                try:
                    await self.book.save({k: a for k, a in self.active.items() if k not in self._own_keys()})
                except PeteError as exc:
                    log.warning("could not keep the firing alerts in the store: %s", exc)
            for notice in notices:
                await self._deliver(notice)
            return notices

    async def _lead(self) -> bool:
        """True when this replica leads; on taking the lead, carry on the alerts the last leader fired."""
        leading = await self.leadership.acquire()
        if leading and not self.leading and self.book is not None:
            try:
                carried = await self.book.load()
            except PeteError as exc:
                log.warning("took the alert lead but could not read the firing alerts: %s", exc)
                return False
            own = self._own_keys()
            self.active = {**carried, **{k: a for k, a in self.active.items() if k in own}}
            self.pending = {k: t for k, t in self.pending.items() if k in own}
            self.metrics.set_alerts(a.entry() for a in self.active.values())
            log.info("this replica now leads alert evaluation (%d alert(s) firing)", len(self.active))
        elif not leading and self.leading:
            log.info("this replica no longer leads alert evaluation")
        if not leading:  # the leader's alerts are the leader's business now
            own = self._own_keys()
            self.active = {k: a for k, a in self.active.items() if k in own}
            self.pending = {k: t for k, t in self.pending.items() if k in own}
        self.leading = leading
        return leading

    def _own_keys(self) -> set[str]:
        """Keys of alerts from per-replica rules: this replica's own, never handed to a leader.

        A finding's key starts with its rule's name (`rule` or `rule:detail`).
        """
        names = {r.name for r in self.rules if _per_replica(r)}
        return {k for k in (*self.active, *self.pending) if k.split(":", 1)[0] in names}

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
        try:
            async with events.subscribe() as sub, anyio.create_task_group() as tg:
                tg.start_soon(self._follow, sub)
                task_status.started()
                while True:
                    await self.evaluate()
                    await anyio.sleep(self.interval_s)
        finally:
            await self.leadership.release()

    async def _follow(self, sub: Subscription) -> None:
        async for event in sub:
            self.observe(event)
            if event.kind.startswith(_EVALUATE_ON):
                await self.evaluate()


def _per_replica(rule: Rule) -> bool:
    return bool(getattr(rule, "per_replica", False))


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
        leadership=core.store.leadership("alerts"),
        book=AlertBook(core.store),
    )
    async with anyio.create_task_group() as tg:
        await tg.start(engine.run, core.events)
        try:
            yield engine
        finally:
            tg.cancel_scope.cancel()
