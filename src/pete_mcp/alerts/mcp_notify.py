"""MCP notification sink: publishes `alert.fired` / `alert.repeated` / `alert.resolved` core events.

The MCP server turns these into resource-updated notifications for subscribed clients; the
dashboard sees them on `/api/events`. Publishing never blocks and never fails.
"""

from __future__ import annotations

from pete_mcp.core import EventBus

from .base import Notice

__all__ = ["EventBusSink"]

_KINDS = {"fired": "alert.fired", "repeat": "alert.repeated", "resolved": "alert.resolved"}


class EventBusSink:
    name = "events"

    def __init__(self, events: EventBus) -> None:
        self._events = events

    async def send(self, notice: Notice) -> None:
        alert = notice.alert
        self._events.publish(
            _KINDS[notice.kind],
            key=alert.key,
            rule=alert.finding.rule,
            severity=alert.finding.severity,
            title=alert.finding.title,
            detail=alert.finding.detail,
            since=alert.since,
            resolved_at=alert.resolved_at,
        )
