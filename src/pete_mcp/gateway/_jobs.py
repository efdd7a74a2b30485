"""The requests this gateway has in flight on its providers, and those that finished in the last hour.

RunPod has no "list my jobs" route, and its OpenAI route gives no job id at all, so the gateway
keeps its own book: `Core.chat` notes each request under a request id (`req-…`), adds the
provider's job id when one is announced (`JobStarted`, the `/run` + `/stream` path), its first
token, and how it ended. The dashboard (`/api/jobs`) and the MCP resource `pete://jobs` read it;
`Core.cancel_job` stops a request by either id. Everything runs on the event loop: no locks.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pete_mcp.routing import StopHandle

__all__ = ["JobBook", "JobEntry"]

FINISHED_KEEP_S = 3600.0
FINISHED_MAX = 500
_VIEW_FIELDS = (
    "id",
    "job_id",
    "provider",
    "model",
    "alias",
    "source",
    "conversation_id",
    "status",
    "started_at",
    "first_token_at",
    "ended_at",
    "worker_id",
    "ttft_s",
    "total_s",
    "input_tokens",
    "output_tokens",
    "error",
)


@dataclass(slots=True)
class JobEntry:
    """One request on a provider: who asked, where it runs, and its timings as they become known."""

    id: str
    provider: str
    model: str
    alias: str
    source: str
    started_at: float
    conversation_id: str | None = None
    job_id: str | None = None
    status: str = "queued"  # queued → streaming → completed | failed | cancelled
    first_token_at: float | None = None
    ended_at: float | None = None
    worker_id: str | None = None
    ttft_s: float | None = None
    total_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None
    stop: StopHandle = field(default_factory=StopHandle)

    def __post_init__(self) -> None:
        self.stop.on_job = self.job_announced

    def job_announced(self, job_id: str, provider: str) -> None:
        """A provider named its job (before the first token): list it under that id."""
        self.job_id, self.provider = job_id, provider

    def view(self, now: float) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _VIEW_FIELDS}
        data["age_s"] = round((self.ended_at or now) - self.started_at, 3)
        return data


class JobBook:
    """Active requests by id (insertion order = oldest first) and a ring of recently finished ones."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._active: OrderedDict[str, JobEntry] = OrderedDict()
        self._finished: deque[JobEntry] = deque(maxlen=FINISHED_MAX)
        self._prefix = f"req-{uuid.uuid4().hex[:6]}-"
        self._numbers = itertools.count(1)

    def started(self, *, provider: str, model: str, alias: str, source: str, conversation_id: str | None) -> JobEntry:
        entry = JobEntry(
            f"{self._prefix}{next(self._numbers)}", provider, model, alias, source, self.clock(), conversation_id
        )
        self._active[entry.id] = entry
        return entry

    def finished(self, entry: JobEntry, *, status: str, error: str | None = None) -> None:
        if self._active.pop(entry.id, None) is None:
            return
        entry.status = status
        entry.ended_at = self.clock()
        if entry.total_s is None:
            entry.total_s = entry.ended_at - entry.started_at
        entry.error = error
        entry.stop.on_job = None  # its own method: a cycle the collector would have to find
        self._finished.append(entry)

    def get(self, some_id: str) -> JobEntry | None:
        """An active request by its request id or its provider's job id."""
        entry = self._active.get(some_id)
        if entry is None:
            entry = next((e for e in self._active.values() if e.job_id == some_id), None)
        return entry

    def active(self) -> list[dict[str, Any]]:
        """Requests running now, newest first."""
        now = self.clock()
        return [e.view(now) for e in reversed(self._active.values())]

    def recent(self, within_s: float = FINISHED_KEEP_S) -> list[dict[str, Any]]:
        """Requests that finished in the last `within_s`, newest first."""
        now = self.clock()
        return [e.view(now) for e in reversed(self._finished) if e.ended_at and e.ended_at >= now - within_s]

    def __len__(self) -> int:
        return len(self._active)
