"""The calls under way, as the operator sees them: who (masked), turns, model, last TTFT, state,
and the transcript as it happens.

The VAPI face tells the board what happens on a call (it owns the wire); the dashboard and
MCP faces read it. No face imports another, so the board lives with the core. Each change is
published on the event bus (`call.started`, `call.state`, `call.said`, `call.ended`), which is
how the page's transcript grows without polling. Ended calls stay in a short in-memory ring
for the "recent calls" list; their persisted record is the VAPI face's `vapi_calls` row.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pete_mcp.core import EventBus

__all__ = ["CallBoard", "CallState", "LiveCall"]

CallState = Literal["listening", "answering", "transferring"]
TRANSCRIPT_MAX = 200  # lines kept per live call
RECENT_MAX = 200
TEXT_MAX = 2000


@dataclass(slots=True)
class LiveCall:
    call_id: str
    caller: str  # already masked by the face
    source: str
    started_at: float
    tenant: str = ""
    turns: int = 0
    model: str = ""
    last_ttft_s: float | None = None
    state: CallState = "listening"
    ended_at: float | None = None
    ended_reason: str = ""
    transcript: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=TRANSCRIPT_MAX))

    def view(self, now: float, *, transcript: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "call_id": self.call_id,
            "caller": self.caller,
            "tenant": self.tenant,
            "source": self.source,
            "started_at": self.started_at,
            "duration_s": round((self.ended_at or now) - self.started_at, 1),
            "turns": self.turns,
            "model": self.model,
            "last_ttft_s": self.last_ttft_s,
            "state": self.state if self.ended_at is None else "ended",
            "ended_at": self.ended_at,
            "ended_reason": self.ended_reason,
        }
        if transcript:
            data["transcript"] = list(self.transcript)
        return data


class CallBoard:
    def __init__(self, events: EventBus, *, clock: Callable[[], float] = time.time) -> None:
        self.events = events
        self.clock = clock
        self._live: OrderedDict[str, LiveCall] = OrderedDict()
        self._recent: deque[LiveCall] = deque(maxlen=RECENT_MAX)

    def _call(self, call_id: str) -> LiveCall | None:
        return self._live.get(call_id)

    def started(self, call_id: str, *, caller: str = "", source: str = "vapi", tenant: str = "") -> LiveCall:
        """Note a call (idempotent); fills in caller and tenant once they are known."""
        call = self._live.get(call_id)
        if call is None:
            call = self._live[call_id] = LiveCall(call_id, caller, source, self.clock(), tenant=tenant)
        else:
            call.caller = call.caller or caller
            call.tenant = call.tenant or tenant
        return call

    def set_state(self, call_id: str, state: CallState) -> None:
        call = self._call(call_id)
        if call is None or call.state == state:
            return
        call.state = state
        self.events.publish("call.state", call_id=call_id, state=state)

    def said(self, call_id: str, role: str, text: str) -> None:
        """A line of the transcript: `role` is `caller` or `assistant`."""
        call = self._call(call_id)
        text = text.strip()
        if call is None or not text:
            return
        line = {"at": self.clock(), "role": role, "text": text[:TEXT_MAX]}
        call.transcript.append(line)
        if role == "caller":
            call.turns += 1
        self.events.publish("call.said", call_id=call_id, role=role, text=line["text"], turns=call.turns)

    def answered(self, call_id: str, *, model: str, ttft_s: float | None) -> None:
        call = self._call(call_id)
        if call is None:
            return
        call.model = model or call.model
        call.last_ttft_s = ttft_s if ttft_s is not None else call.last_ttft_s
        if call.state == "answering":
            call.state = "listening"
        self.events.publish("call.state", call_id=call_id, state=call.state, model=call.model, ttft_s=ttft_s)

    def ended(self, call_id: str, *, reason: str) -> LiveCall | None:
        call = self._live.pop(call_id, None)
        if call is None:
            return None
        call.ended_at = self.clock()
        call.ended_reason = reason
        self._recent.append(call)
        return call

    # --- reading ----------------------------------------------------------------------------
    def live(self) -> list[dict[str, Any]]:
        """Calls under way, newest first."""
        now = self.clock()
        return [c.view(now) for c in reversed(self._live.values())]

    def recent(self) -> list[dict[str, Any]]:
        """Calls that ended since this gateway started, newest first."""
        now = self.clock()
        return [c.view(now) for c in reversed(self._recent)]

    def get(self, call_id: str) -> dict[str, Any] | None:
        """One call, live or recently ended, with its transcript; None when unknown."""
        now = self.clock()
        call = self._live.get(call_id) or next((c for c in self._recent if c.call_id == call_id), None)
        return call.view(now, transcript=True) if call else None

    def __len__(self) -> int:
        return len(self._live)
