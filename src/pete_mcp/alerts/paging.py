"""Paging a person: one emergency page through every paging sink, once per call, retried, recorded.

`Pager.page(page)` claims the escalation in the store (so a second turn of the same call, or
a second replica, does not page again), tells the watchers (the MCP/event sink: visible to
operators, but it reaches no one by itself, so it never counts as a page), then sends to the
sinks that reach a person — Slack, a GitHub issue, and the paging webhook (PagerDuty, Twilio
SMS or signed JSON) — all at once, retrying each on 5xx, 429 or a network error with backoff.
Every attempt is kept. `PageResult.paged` is true only when such a sink accepted, which is
the only time Jamie may say the on-call team was paged. `PageProgress` lets a caller stop
waiting at the first acceptance instead of the last retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import anyio
import httpx

from pete_mcp.core import EventBus, PeteError, Settings
from pete_mcp.core.desk_records import mask_caller
from pete_mcp.core.escalations import EscalationBook, PageState

from .base import Alert, AlertDeliveryError, AlertSink, Finding, Notice
from .github import GitHubIssueSink
from .mcp_notify import EventBusSink
from .slack import SlackWebhookSink
from .webhook import PageDetails, SignedWebhookSink

__all__ = [
    "AlertSinkPager",
    "PageAttempt",
    "PageDetails",
    "PageProgress",
    "PageResult",
    "Pager",
    "PagingSink",
    "pager_from_settings",
]

log = logging.getLogger(__name__)


class PagingSink(Protocol):
    name: str

    async def page(self, page: PageDetails) -> int | None:
        """Deliver one page (the HTTP status when there is one). Raises `AlertDeliveryError`."""
        ...


class AlertSinkPager:
    """An alert sink (Slack, GitHub, MCP events) used for a page: the page becomes a critical alert notice.

    The caller's number is masked here: a Slack channel or an issue is read by more people than on-call.
    """

    def __init__(self, sink: AlertSink, *, accepted_status: int | None = None) -> None:
        self.sink = sink
        self.name = "mcp" if sink.name == "events" else sink.name
        self._status = accepted_status

    async def page(self, page: PageDetails) -> int | None:
        back = (
            f" Call back {mask_caller(page.callback_number)} (full number on the desk)." if page.callback_number else ""
        )
        finding = Finding(
            key=f"emergency:{page.call_id}:{page.category}",
            rule="emergency",
            severity="critical",
            title=f"Emergency on a tenant call: {page.category}",
            detail=f"{page.summary[:500]}{back} Call {page.call_id}, escalation {page.escalation_id}.",
        )
        alert = Alert(finding, since=page.at, fired_at=page.at, last_notified=page.at)
        await self.sink.send(Notice("fired", alert, page.at))
        return self._status


@dataclass(frozen=True, slots=True)
class PageAttempt:
    sink: str
    at: float
    ok: bool
    status: int | None
    error: str


@dataclass(frozen=True, slots=True)
class PageResult:
    escalation_id: int
    state: PageState
    accepted: tuple[str, ...]  # sinks that reach a person and accepted
    configured: tuple[str, ...]  # sinks that reach a person
    attempts: tuple[PageAttempt, ...] = ()
    duplicate: bool = False  # another turn or replica owns this page

    @property
    def paged(self) -> bool:
        return bool(self.accepted)


@dataclass
class PageProgress:
    """Filled in while a page runs: the first acceptance, then the result."""

    accepted: list[str] = field(default_factory=list)
    result: PageResult | None = None
    _changed: anyio.Event = field(default_factory=anyio.Event)

    def accept(self, sink: str) -> None:
        self.accepted.append(sink)
        self._changed.set()

    def settle(self, result: PageResult) -> None:
        self.result = result
        self._changed.set()

    @property
    def paged(self) -> bool:
        return bool(self.accepted) or (self.result is not None and self.result.paged)

    async def wait(self, timeout_s: float) -> bool:
        """Wait until a sink accepted or the page finished, at most `timeout_s`; returns `paged`."""
        with anyio.move_on_after(timeout_s):
            await self._changed.wait()
        return self.paged


class Pager:
    def __init__(
        self,
        book: EscalationBook,
        sinks: Sequence[PagingSink],
        *,
        watchers: Sequence[PagingSink] = (),
        events: EventBus | None = None,
        retries: int = 3,
        backoff_s: float = 0.5,
        duplicate_wait_s: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.book = book
        self.sinks = list(sinks)
        self.watchers = list(watchers)
        self.events = events
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.duplicate_wait_s = duplicate_wait_s
        self.sleep = sleep
        self.clock = clock

    @property
    def configured(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sinks)

    async def page(self, page: PageDetails, progress: PageProgress | None = None) -> PageResult:
        """Page the on-call once for `page.call_id` and `page.category` (`escalation_id` is filled in)."""
        progress = progress if progress is not None else PageProgress()
        claim = await self.book.claim(
            call_id=page.call_id,
            category=page.category,
            summary=page.summary,
            emergency_id=page.emergency_id,
        )
        if not claim.mine:
            result = await self._outcome_elsewhere(claim.id, claim.state)
            progress.settle(result)
            return result
        page = replace(page, escalation_id=claim.id)
        attempts: list[PageAttempt] = []
        accepted: list[str] = []
        for watcher in self.watchers:
            await self._attempt(watcher, page, attempts)
        async with anyio.create_task_group() as tg:
            for sink in self.sinks:
                tg.start_soon(self._deliver, sink, page, attempts, accepted, progress)
        state: PageState = "paged" if accepted else ("failed" if self.sinks else "unpaged")
        await self.book.finish(claim.id, state)
        result = PageResult(claim.id, state, tuple(accepted), self.configured, tuple(attempts))
        if self.events is not None:
            self.events.publish(
                f"escalation.{state}",
                escalation_id=claim.id,
                call_id=page.call_id,
                category=page.category,
                accepted=list(accepted),
            )
        (log.warning if state == "paged" else log.error)(
            "emergency page for call %s (%s): %s%s",
            page.call_id,
            page.category,
            state,
            f" by {', '.join(accepted)}" if accepted else "",
        )
        progress.settle(result)
        return result

    async def _deliver(
        self,
        sink: PagingSink,
        page: PageDetails,
        attempts: list[PageAttempt],
        accepted: list[str],
        progress: PageProgress,
    ) -> None:
        for attempt in range(self.retries + 1):
            error = await self._attempt(sink, page, attempts)
            if error is None:
                accepted.append(sink.name)
                progress.accept(sink.name)
                return
            if not (isinstance(error, AlertDeliveryError) and error.retryable) or attempt == self.retries:
                return
            await self.sleep(self.backoff_s * 2**attempt)

    async def _attempt(self, sink: PagingSink, page: PageDetails, attempts: list[PageAttempt]) -> Exception | None:
        """One try; records it and returns the error, or None when the sink accepted."""
        status: int | None = None
        error: Exception | None = None
        try:
            status = await sink.page(page)
        except AlertDeliveryError as exc:
            status, error = exc.status_code, exc
        except PeteError as exc:
            error = exc
        except Exception as exc:  # a sink bug must not stop the others; never log its args (secrets)
            error = exc
            log.warning("paging sink %s failed: %s", sink.name, type(exc).__name__)
        text = "" if error is None else (str(error) if isinstance(error, PeteError) else type(error).__name__)
        record = PageAttempt(sink.name, self.clock(), error is None, status, text)
        attempts.append(record)
        await self.book.record_attempt(page.escalation_id, sink=sink.name, ok=record.ok, status=status, error=text)
        return error

    async def _outcome_elsewhere(self, escalation_id: int, state: PageState) -> PageResult:
        """Another turn or replica holds the page: wait (briefly) for its outcome and report it."""
        with anyio.move_on_after(self.duplicate_wait_s):
            while state == "paging":
                await anyio.sleep(0.1)
                state = await self.book.state(escalation_id) or "failed"
        accepted = await self.book.accepted_by(escalation_id, self.configured) if state == "paged" else []
        return PageResult(escalation_id, state, tuple(accepted), self.configured, duplicate=True)


def pager_from_settings(settings: Settings, http: httpx.AsyncClient, events: EventBus, book: EscalationBook) -> Pager:
    """Slack, GitHub and the paging webhook where configured; the MCP/event sink always (as a watcher)."""
    sinks: list[PagingSink] = []
    if settings.slack_webhook_url is not None:
        sinks.append(
            AlertSinkPager(SlackWebhookSink(http, settings.slack_webhook_url.get_secret_value()), accepted_status=200)
        )
    if settings.github_token is not None and settings.github_repo:
        labels = tuple(label.strip() for label in settings.github_alert_labels.split(",") if label.strip())
        github = GitHubIssueSink(
            http,
            repo=settings.github_repo,
            token=settings.github_token.get_secret_value(),
            api_url=settings.github_api_url,
            labels=labels,
        )
        sinks.append(AlertSinkPager(github, accepted_status=201))
    if settings.pager_webhook_url:
        try:
            sinks.append(
                SignedWebhookSink(
                    http,
                    url=settings.pager_webhook_url,
                    secret=settings.pager_webhook_secret.get_secret_value() if settings.pager_webhook_secret else "",
                    body_format=settings.pager_webhook_format,
                    sms_from=settings.pager_sms_from,
                    sms_to=tuple(
                        n.strip() for n in (settings.pager_sms_to or settings.on_call_number).split(",") if n.strip()
                    ),
                    username=settings.pager_webhook_username,
                )
            )
        except PeteError as exc:
            log.error("the paging webhook is off: %s", exc)
    return Pager(
        book,
        sinks,
        watchers=[AlertSinkPager(EventBusSink(events))],
        events=events,
        retries=settings.pager_retries,
        backoff_s=settings.pager_backoff_s,
    )
