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

import functools
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

from .beside import beside

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
    over: anyio.Event = field(default_factory=anyio.Event)  # the reader is done: the watchdog returns


async def _watch(clock: TurnClock, reading: _Reading, on_late: Callable[[], Awaitable[None]]) -> None:
    """Sleep to the clock's next point; there, ask for the holding phrase or end the round.
    Returns as soon as the reader is done (`reading.over`).

    The clock moves as events arrive, so a wake-up before its time just sleeps the rest:
    one timer per round instead of a deadline moved per event.
    """
    while True:
        wait, holds = clock.next_wait(time.perf_counter())
        if wait > 0:
            with anyio.move_on_after(wait):
                await reading.over.wait()
            if reading.over.is_set():
                return
            continue
        if holds:
            clock.held = True
            with anyio.CancelScope(shield=True):  # said and stored whole, even if the round ends meanwhile
                await on_late()
            continue
        reading.expired = "stalled" if clock.answered_at is not None else "late"
        if reading.waiting:  # never cut a frame: the reader stops on its own after the event it handles
            reading.scope.cancel()
        return


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
    watchdog task (`beside`) holds the clock and cancels the read when the round runs out of time.
    """
    result = RoundResult()
    parts: list[str] = []
    reading = _Reading()
    next_event = events.__anext__
    try:
        async with beside(functools.partial(_watch, clock, reading, on_late), on_exit=reading.over.set):
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
