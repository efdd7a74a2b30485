"""A small in-memory ring of recent log records and core events, for `pete://logs/recent`.

Why: an operator asking "what just happened?" from Claude has no terminal to tail. The ring
keeps the last few hundred entries in memory only (nothing new on disk), from Pete's own
loggers and the core's event bus. Pete's log messages carry no secrets; tracebacks are
left out, only the exception's type is kept.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from pete_mcp.core import Event

__all__ = ["LogEntry", "RecentLog"]

PETE_LOGGERS = ("pete_mcp", "pete_vapi", "gpu_handler")


@dataclass(frozen=True, slots=True)
class LogEntry:
    at: float
    level: str
    source: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


class _RingHandler(logging.Handler):
    def __init__(self, ring: RecentLog, level: int) -> None:
        super().__init__(level)
        self.ring = ring

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        if record.exc_info and record.exc_info[0] is not None:
            message = f"{message} ({record.exc_info[0].__name__})"
        self.ring.add(LogEntry(record.created, record.levelname, record.name, message[:1000]))


class RecentLog:
    def __init__(self, maxlen: int = 300) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=maxlen)

    def add(self, entry: LogEntry) -> None:
        self._entries.append(entry)

    def record_event(self, event: Event) -> None:
        data = {k: v if isinstance(v, str | int | float | bool | None) else str(v) for k, v in event.data.items()}
        summary = " ".join(f"{k}={v}" for k, v in data.items() if v is not None)
        self.add(LogEntry(event.at, "EVENT", "events", f"{event.kind} {summary}".strip()[:1000], data))

    def entries(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest last, at most `limit`."""
        return [asdict(e) for e in list(self._entries)[-limit:]]

    @contextmanager
    def capturing(self, *loggers: str, level: int = logging.INFO) -> Iterator[None]:
        """Copy records of `loggers` (Pete's own by default) into the ring while inside."""
        handler = _RingHandler(self, level)
        targets = [logging.getLogger(name) for name in loggers or PETE_LOGGERS]
        for target in targets:
            target.addHandler(handler)
        try:
            yield
        finally:
            for target in targets:
                target.removeHandler(handler)
