"""What alert rules, the engine and sinks share: findings, alerts, notices and the sink protocol.

A rule turns the current metrics into `Finding`s (a condition holding now, with a stable
`key` that de-duplicates it). The engine turns findings into `Alert`s with a life — pending,
firing, resolved — and hands each change to every sink as a `Notice`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from pete_mcp.core import PeteError
from pete_mcp.metrics import AlertEntry

__all__ = ["Alert", "AlertDeliveryError", "AlertSink", "Finding", "Notice", "NoticeKind", "Severity"]

Severity = Literal["critical", "warning", "info"]
NoticeKind = Literal["fired", "repeat", "resolved"]


class AlertDeliveryError(PeteError):
    """A sink could not deliver a notice (the message never contains the sink's secret URL or token)."""

    code = "alert_delivery"
    status = 502

    def __init__(self, message: str, *, hint: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code  # the service's HTTP status; None when it could not be reached

    @property
    def retryable(self) -> bool:
        """Worth another try: unreachable, rate-limited (429) or a server error (5xx)."""
        return self.status_code is None or self.status_code == 429 or self.status_code >= 500


@dataclass(frozen=True, slots=True)
class Finding:
    key: str
    rule: str
    severity: Severity
    title: str
    detail: str


@dataclass(slots=True)
class Alert:
    finding: Finding
    since: float
    fired_at: float
    last_notified: float
    resolved_at: float | None = None

    @property
    def key(self) -> str:
        return self.finding.key

    def entry(self) -> AlertEntry:
        f = self.finding
        return AlertEntry(key=f.key, rule=f.rule, severity=f.severity, title=f.title, detail=f.detail, since=self.since)


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    alert: Alert
    at: float


@runtime_checkable
class AlertSink(Protocol):
    name: str

    async def send(self, notice: Notice) -> None:
        """Deliver one notice. Raises `AlertDeliveryError` when the service refuses or cannot be reached."""
        ...
