"""Generations that outlive the request that started them, addressed by a job id.

Why: an MCP host gives a tool call about a minute, and a RunPod cold start can take longer.
`run_prompt` starts a job here, waits for it within its time budget, and when the budget
runs out hands back the job id while the generation keeps running in this tracker's task
group; `get_job` and `cancel_job` find it again. The tracker knows the core, not MCP.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import anyio
from anyio.abc import TaskGroup

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import ConfigError, InputError, JobStarted, NotFound, PeteError, TextDelta
from pete_mcp.gateway import ChatTurn, Core, Reply, new_conversation_id

__all__ = ["JobStatus", "JobTracker", "TrackedJob", "prompt_turn"]

log = logging.getLogger(__name__)

JobStatus = Literal["waiting", "generating", "completed", "failed", "cancelled"]
UpdateFn = Callable[["TrackedJob"], Awaitable[None]]


def prompt_turn(
    prompt: str | None,
    exchange: list[tuple[str, str]] | None,
    model: str | None,
    conversation_id: str | None,
    max_tokens: int | None,
    temperature: float | None,
) -> ChatTurn:
    """The chat turn an operator's prompt (one string, or a list of (role, content)) asks for.

    `conversation_id="new"` starts a persisted conversation with a fresh id.

    Raises:
        InputError: neither or both of `prompt` and `exchange`.
    """
    if (prompt is None) == (exchange is None):
        raise InputError("Pass exactly one of prompt (a string) or messages (a list of {role, content}).")
    messages = (
        [Message(role="user", content=prompt)]
        if prompt is not None
        else [Message.model_validate({"role": role, "content": content}) for role, content in exchange or []]
    )
    return ChatTurn(
        messages,
        model=model,
        conversation_id=new_conversation_id() if conversation_id == "new" else conversation_id,
        options=ChatOptions(max_tokens=max_tokens, temperature=temperature),
        source="mcp",
    )


@dataclass(eq=False)
class TrackedJob:
    """One generation: its turn, what has arrived so far, and how it ended."""

    id: str
    turn: ChatTurn
    alias: str
    status: JobStatus = "waiting"
    parts: list[str] = field(default_factory=list)
    runpod_job_id: str | None = None
    reply: Reply | None = None
    error: PeteError | None = None
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    @property
    def text(self) -> str:
        return self.reply.text if self.reply is not None else "".join(self.parts)

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")

    @property
    def elapsed_s(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at

    def _touch(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def changed(self) -> None:
        """Wait for the next update (a token, the RunPod job id, or the end)."""
        if not self.finished:
            await self._changed.wait()


class JobTracker:
    """Runs generations in its own task group; keeps the last `keep` jobs for `ttl_s` after they end."""

    def __init__(self, core: Core, *, keep: int = 200, ttl_s: float = 1800.0) -> None:
        self.core = core
        self.keep = keep
        self.ttl_s = ttl_s
        self._jobs: OrderedDict[str, TrackedJob] = OrderedDict()
        self._tg: TaskGroup | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[JobTracker]:
        """Own the task group jobs run in. Nested entries share the outermost one."""
        if self._tg is not None:
            yield self
            return
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    def start(self, turn: ChatTurn) -> TrackedJob:
        """Start generating `turn` in the background and return its job at once.

        Raises:
            NotFound: the turn names an unknown model.
            ConfigError: the tracker is not running (a server bug, not a caller's).
        """
        if self._tg is None:
            raise ConfigError("the job tracker is not running.")
        alias = self.core.models.get(turn.model).alias if turn.model else self.core.active_alias
        job = TrackedJob(id=f"job-{uuid.uuid4().hex[:16]}", turn=turn, alias=alias)
        self._remember(job)
        self._tg.start_soon(self._run, job, name=f"pete job {job.id}")
        return job

    def get(self, job_id: str) -> TrackedJob:
        """Raises: NotFound for an unknown or expired id."""
        self._forget_expired()
        try:
            return self._jobs[job_id]
        except KeyError:
            raise NotFound(
                f"no job {job_id!r}.", hint=f"Jobs are kept {int(self.ttl_s // 60)} minutes after they end."
            ) from None

    def unfinished(self) -> list[TrackedJob]:
        """Jobs still waiting or generating, oldest first."""
        return [job for job in self._jobs.values() if not job.finished]

    async def cancel(self, job_id: str) -> TrackedJob:
        """Stop a job (and its RunPod job, best effort); a finished job is returned unchanged."""
        job = self.get(job_id)
        if job.finished:
            return job
        job.scope.cancel()
        with anyio.move_on_after(10):
            await job.done.wait()
        return job

    async def wait(self, job: TrackedJob, timeout_s: float, on_update: UpdateFn | None = None) -> bool:
        """Wait up to `timeout_s` for `job` to end, calling `on_update` as it changes; True if it ended."""
        with anyio.move_on_after(max(timeout_s, 0.0)):
            while not job.finished:
                await job.changed()
                if on_update is not None:
                    await on_update(job)
        return job.finished

    # --- internals -------------------------------------------------------------------------
    async def _run(self, job: TrackedJob) -> None:
        try:
            with job.scope:
                async for event in self.core.chat(job.turn):
                    if isinstance(event, JobStarted):
                        job.runpod_job_id = event.job_id
                    elif isinstance(event, TextDelta):
                        job.status = "generating"
                        job.parts.append(event.text)
                    else:
                        job.reply = event
                    job._touch()
                job.status = "completed"
            if job.scope.cancelled_caught:
                job.status = "cancelled"
                await self._cancel_upstream(job)
        except PeteError as exc:
            job.status, job.error = "failed", exc
        except Exception:
            log.exception("job %s failed unexpectedly", job.id)
            job.status, job.error = "failed", PeteError("the generation failed unexpectedly; see the server log.")
        finally:
            job.finished_at = time.monotonic()
            job._touch()
            job.done.set()

    async def _cancel_upstream(self, job: TrackedJob) -> None:
        if job.runpod_job_id is None:
            return
        with anyio.move_on_after(5, shield=True):
            for provider in self.core.router.providers.values():
                try:
                    await provider.cancel(job.runpod_job_id)
                except PeteError as exc:  # best effort: the job may already be gone
                    log.info("cancelling %s on %s: %s", job.runpod_job_id, provider.name, exc)

    def _remember(self, job: TrackedJob) -> None:
        self._forget_expired()
        self._jobs[job.id] = job
        while len(self._jobs) > self.keep:
            oldest = next((j for j in self._jobs.values() if j.finished), None)
            if oldest is None:
                break
            del self._jobs[oldest.id]

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for job_id in [j.id for j in self._jobs.values() if j.finished_at and now - j.finished_at > self.ttl_s]:
            del self._jobs[job_id]
