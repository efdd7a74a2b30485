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

import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import anyio
from anyio.streams.memory import MemoryObjectSendStream

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


@dataclass(frozen=True, slots=True)
class _Failure:
    error: PeteError


async def _pump(events: AsyncIterator[ChatEvent], send: MemoryObjectSendStream[ChatEvent | _Failure]) -> None:
    async with send:
        try:
            async for event in events:
                await send.send(event)
        except PeteError as exc:
            await send.send(_Failure(exc))
        finally:
            # Close the core's generator here, in this task, so the provider's stream closes now.
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()


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
    """
    result = RoundResult()
    parts: list[str] = []

    async def handle(item: ChatEvent | _Failure) -> bool:
        """Take one event; True when the round is over."""
        clock.last_event_at = time.perf_counter()
        if isinstance(item, _Failure):
            result.outcome, result.error = "failed", item.error
            return True
        if isinstance(item, JobStarted):
            result.job_id = item.job_id
            if on_job is not None:
                on_job(item.job_id)
            return False
        if isinstance(item, TextDelta):
            if clock.model_token_at is None:
                clock.model_token_at = clock.last_event_at
            text = item.text + coalesce()
            parts.append(text)
            await on_text(text)
            return False
        result.reply = item
        result.job_id = result.job_id or item.completion.job_id
        return True

    send, receive = anyio.create_memory_object_stream[ChatEvent | _Failure](64)
    held_back: list[ChatEvent | _Failure] = []

    def coalesce() -> str:
        """Text of the deltas already waiting, joined: one frame instead of many when the turn lags
        behind the model (under load), never a wait when it does not."""
        more: list[str] = []
        while True:
            try:
                nxt = receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
            if not isinstance(nxt, TextDelta):
                held_back.append(nxt)
                break
            more.append(nxt.text)
        return "".join(more)

    async with anyio.create_task_group() as tg:
        tg.start_soon(_pump, events, send)
        async with receive:
            over = False
            while not over:
                holds = False
                # One cancel scope per wait phase, its deadline moved per event (cheaper than a scope
                # per event), and lifted while an event is handled so a send is never cut mid-frame.
                with anyio.CancelScope() as waiting:
                    while not over:
                        if held_back:
                            over = await handle(held_back.pop())
                            continue
                        wait, holds = clock.next_wait(time.perf_counter())
                        waiting.deadline = anyio.current_time() + max(wait, 0.0)
                        try:
                            item = await receive.receive()
                        except anyio.EndOfStream:
                            result.outcome = "failed"
                            result.error = PeteError("the model's stream ended without a reply.")
                            over = True
                            break
                        waiting.deadline = math.inf
                        over = await handle(item)
                if over:
                    break
                if waiting.cancelled_caught and holds:
                    clock.held = True
                    await on_late()
                    continue
                result.outcome = "stalled" if clock.answered_at is not None else "late"
                over = True
        tg.cancel_scope.cancel()
    result.text = "".join(parts)
    if result.outcome != "done":
        log.warning("model round ended %s after %.2fs: %s", result.outcome, clock.elapsed(), result.error or "")
    return result
