"""The turn budget: run the core's reply stream against the caller's clock.

A caller must never sit in silence or hear a broken call. VAPI gives a Custom LLM 20 s to
start streaming before it fails the call, and a RunPod cold start can take longer, so each
turn runs on a clock: when the model's first token is later than `holding_after_s` the
turn asks for a holding phrase (once); when no answer has started by `answer_deadline_s`,
or an answer stalls that long, or the provider fails, the round ends and the caller of
`run_round` speaks an apology. Stopping early cancels the core's stream, which closes the
provider's stream (and with it the upstream job); the job id from `JobStarted` is kept so the
caller can also cancel it explicitly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import anyio

from pete_mcp.core.errors import PeteError
from pete_mcp.core.provider import JobStarted, TextDelta
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import ChatEvent, Reply

__all__ = ["RoundResult", "TurnBudget", "TurnClock", "run_round"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnBudget:
    holding_after_s: float = 1.2
    answer_deadline_s: float = 8.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TurnBudget:
        return cls(settings.vapi_holding_after_s, settings.vapi_answer_deadline_s)


@dataclass
class TurnClock:
    """One turn's timeline, shared by its model rounds (a tool call makes a second round)."""

    budget: TurnBudget
    started: float = field(default_factory=time.perf_counter)
    held: bool = False  # the holding phrase was asked for
    spoke_at: float | None = None  # first content of any kind reached the caller (holding phrase included)
    answered_at: float | None = None  # first model text that reached the caller
    model_token_at: float | None = None  # first model token of the turn
    last_event_at: float | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def spoke(self) -> bool:
        return self.spoke_at is not None

    def spoken(self, *, answer: bool) -> None:
        """Content reached the caller; `answer` when it is the model's (not a holding phrase)."""
        now = time.perf_counter()
        if self.spoke_at is None:
            self.spoke_at = now
        if answer and self.answered_at is None:
            self.answered_at = now

    def next_wait(self, now: float) -> tuple[float, bool]:
        """Seconds to wait for the next event, and whether running out means "hold" (else give up)."""
        if self.answered_at is not None:
            return (self.last_event_at or now) + self.budget.answer_deadline_s - now, False
        deadline = self.started + self.budget.answer_deadline_s
        hold_at = self.started + self.budget.holding_after_s
        if not self.held and not self.spoke and hold_at < deadline:
            return hold_at - now, True
        return deadline - now, False


@dataclass
class RoundResult:
    """How one model round ended. `outcome`: done, late (no answer in time), stalled, failed."""

    outcome: Literal["done", "late", "stalled", "failed"] = "done"
    reply: Reply | None = None
    text: str = ""
    job_id: str | None = None
    error: PeteError | None = None


@dataclass
class _Reading:
    """What the round's watchdog needs to know about the reader (the request's own task)."""

    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    waiting: bool = False  # the reader is awaiting the core's next event (safe to cancel there)
    expired: Literal["late", "stalled"] | None = None  # the clock ran out: the round is over


class _Watchdog:
    """The round's clock as one event-loop timer: at the clock's next point, ask for the holding
    phrase or end the round.

    The clock moves as events arrive, so a timer that fires early just sets the next one. A
    timer, not a task: a round costs one `call_later` and one `cancel` (a few µs) instead of a
    task, its cancel scope and its wake-ups (tens of µs, paid by every call at 32 at once). Only
    the holding phrase, which awaits, runs in a task, and only when it is due.
    """

    def __init__(self, clock: TurnClock, reading: _Reading, on_late: Callable[[], Awaitable[None]]) -> None:
        self._clock = clock
        self._reading = reading
        self._on_late = on_late
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._holding: asyncio.Task[None] | None = None
        self._over = False
        self._check()

    def _check(self) -> None:
        self._timer = None
        if self._over:
            return
        wait, holds = self._clock.next_wait(time.perf_counter())
        if wait > 0:
            self._timer = self._loop.call_later(wait, self._check)
        elif holds:
            self._clock.held = True
            self._holding = self._loop.create_task(self._hold())
        else:
            self._reading.expired = "stalled" if self._clock.answered_at is not None else "late"
            if self._reading.waiting:  # never cut a frame: the reader stops on its own after the event it handles
                self._reading.scope.cancel()

    async def _hold(self) -> None:
        with anyio.CancelScope(shield=True):  # said and stored whole, even if the round ends meanwhile
            await self._on_late()
        self._check()

    async def stop(self) -> BaseException | None:
        """The reader is done: no more timers; a holding phrase being said is finished first.
        Returns what saying it raised, if anything (for the reader to raise if it has no error of its own).
        """
        self._over = True
        if self._timer is not None:
            self._timer.cancel()
        if self._holding is None:
            return None
        with anyio.CancelScope(shield=True):
            await asyncio.wait({self._holding})
        return None if self._holding.cancelled() else self._holding.exception()


async def run_round(
    events: AsyncIterator[ChatEvent],
    clock: TurnClock,
    *,
    on_text: Callable[[str], Awaitable[None]],
    on_late: Callable[[], Awaitable[None]],
    on_job: Callable[[str], None] | None = None,
) -> RoundResult:
    """Consume one `core.chat` stream under the clock; return how it ended.

    `on_text` gets each model delta; `on_late` is awaited once when a holding phrase is due;
    `on_job` hears the upstream job id as soon as it is known (to cancel it on a disconnect).
    Any way out other than `done` cancels the stream (and so the upstream job).

    The stream is read in the caller's task, event by event (no relay task or channel per
    turn: at high concurrency every hop per delta is CPU the other calls queue behind); a
    watchdog timer holds the clock and cancels the read when the round runs out of time.
    """
    result = RoundResult()
    parts: list[str] = []
    reading = _Reading()
    next_event = events.__anext__
    try:
        watchdog = _Watchdog(clock, reading, on_late)
        try:
            with reading.scope:
                while reading.expired is None:
                    reading.waiting = True
                    try:
                        item = await next_event()
                    except StopAsyncIteration:
                        result.outcome = "failed"
                        result.error = PeteError("the model's stream ended without a reply.")
                        break
                    except PeteError as exc:
                        result.outcome, result.error = "failed", exc
                        break
                    finally:
                        reading.waiting = False
                    clock.last_event_at = time.perf_counter()
                    if isinstance(item, TextDelta):
                        if clock.model_token_at is None:
                            clock.model_token_at = clock.last_event_at
                        parts.append(item.text)
                        await on_text(item.text)
                    elif isinstance(item, JobStarted):
                        result.job_id = item.job_id
                        if on_job is not None:
                            on_job(item.job_id)
                    else:
                        result.reply = item
                        result.job_id = result.job_id or item.completion.job_id
                        break
        finally:
            holding_error = await watchdog.stop()
        if holding_error is not None:
            raise holding_error
    finally:
        # Close the core's generator now, in this task: its provider stream (and upstream job) closes with it.
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()
    if result.reply is None and reading.expired is not None and result.outcome == "done":
        result.outcome = reading.expired
    result.text = "".join(parts)
    if result.outcome != "done":
        log.warning("model round ended %s after %.2fs: %s", result.outcome, clock.elapsed(), result.error or "")
    return result
