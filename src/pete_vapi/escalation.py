"""An emergency on a call: record it on the desk, page the on-call, and say only what is true.

The transfer to the on-call line never waits for this. The page runs in the face's
background (its retries may outlast the turn); the words wait for it at most
`PAGER_WAIT_S`: "I've paged the on-call team" only when a sink that reaches a person
accepted in that time, otherwise "I've logged this as an emergency". The tool result the
model reads says the same.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import anyio

from pete_mcp.alerts import PageDetails, PageProgress, Pager
from pete_mcp.core.property_desk import PropertyDesk

from .background import Background

__all__ = ["LOGGED_LINE", "PAGED_LINE", "EscalationOutcome", "Escalator"]

log = logging.getLogger(__name__)

PAGED_LINE = "I've paged the on-call team, and I'm connecting you to the on-call line now."
LOGGED_LINE = "I've logged this as an emergency, and I'm connecting you to the on-call line now."


@dataclass(frozen=True, slots=True)
class EscalationOutcome:
    emergency_id: int
    paged: bool
    accepted: tuple[str, ...]
    configured: tuple[str, ...]

    @property
    def spoken(self) -> str:
        """What Jamie may say about the page."""
        return PAGED_LINE if self.paged else LOGGED_LINE

    @property
    def tool_result(self) -> str:
        """The one-line tool result for the model: the truth about the page, and what to do next."""
        if self.paged:
            return (
                f"Emergency {self.emergency_id} logged and the on-call team was paged ({', '.join(self.accepted)}). "
                "Tell the caller, then transfer them to the on-call team now."
            )
        why = "no pager has accepted the page yet" if self.configured else "no pager is configured"
        return (
            f"Emergency {self.emergency_id} logged, but {why}: do not say anyone was paged. "
            "Tell the caller it is logged as an emergency and transfer them to the on-call team now."
        )


class Escalator:
    """Records emergencies and pages through `pager` (None: record only; Jamie then never claims a page)."""

    def __init__(
        self, desk: PropertyDesk, pager: Pager | None, background: Background | None, *, wait_s: float = 1.5
    ) -> None:
        self.desk = desk
        self.pager = pager
        self.background = background
        self.wait_s = wait_s

    async def record(self, *, call_id: str, category: str, summary: str, callback_number: str) -> PageDetails:
        """The emergency on the desk (once per call and category); the page to send about it."""
        note = await self.desk.escalate_emergency(
            call_id=call_id, category=category, summary=summary, callback_number=callback_number
        )
        return PageDetails(
            call_id=call_id,
            category=" ".join(category.split())[:40].lower() or "other",  # as the desk stores it
            summary=" ".join(summary.split())[:2000],
            callback_number=callback_number,
            at=time.time(),
            emergency_id=note.id,
        )

    async def page(self, details: PageDetails) -> EscalationOutcome:
        """Start the page and wait for its first acceptance or its end, at most `wait_s`."""
        emergency_id = details.emergency_id or 0
        if self.pager is None:
            return EscalationOutcome(emergency_id, False, (), ())
        progress = PageProgress()
        if self.background is not None and self.background.start_soon(
            self.pager.page, details, progress, name=f"page on-call for {details.call_id}"
        ):
            await progress.wait(self.wait_s)
        else:  # no lifespan running (a bare tool call): page inline, still bounded
            with anyio.move_on_after(self.wait_s):
                await self.pager.page(details, progress)
        accepted = tuple(progress.accepted) or (progress.result.accepted if progress.result else ())
        return EscalationOutcome(emergency_id, progress.paged, accepted, self.pager.configured)

    async def escalate(self, *, call_id: str, category: str, summary: str, callback_number: str) -> EscalationOutcome:
        details = await self.record(
            call_id=call_id, category=category, summary=summary, callback_number=callback_number
        )
        return await self.page(details)
