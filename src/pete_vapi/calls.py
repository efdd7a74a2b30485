"""Calls: which are live (published as `call.started` / `call.ended` core events), and what VAPI
reports about each one (status, end-of-call report, per-turn latencies), persisted.

VAPI delivers server messages at least once and re-fires `in-progress`, so every record is
idempotent: `once(call_id, type, key)` is the ledger (never a hash of the body: presigned
URLs change per delivery). The live count is carried in each event's data, so the metrics
helper reads it from events alone. A call whose end was never reported is dropped after
`stale_after_s` of silence.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

import anyio

from pete_mcp.core.storage import Conn
from pete_mcp.gateway import Core

from .redact import mask_number
from .wire import ServerMessage

__all__ = ["CallBook", "EndOfCallReport", "parse_end_of_call_report"]

log = logging.getLogger(__name__)

_INSERT_TURN = (
    "INSERT INTO vapi_turns(call_id, at, outcome, first_content_ms, model_ttft_ms, total_ms, held, job_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _iso_seconds(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class EndOfCallReport:
    """The fields Pete keeps from an end-of-call report, read from the new layout, then the legacy one."""

    def __init__(self, message: ServerMessage) -> None:
        raw = message.model_dump(mode="json")
        artifact = message.artifact or {}
        analysis = message.analysis or {}
        call = raw.get("call") or {}
        self.ended_reason = message.endedReason or str(call.get("endedReason") or "")
        self.transcript = str(artifact.get("transcript") or raw.get("transcript") or "")
        self.summary = str(analysis.get("summary") or raw.get("summary") or "")
        recording = artifact.get("recording") if isinstance(artifact.get("recording"), dict) else {}
        self.recording_url = str(
            artifact.get("recordingUrl") or (recording or {}).get("url") or raw.get("recordingUrl") or ""
        )
        self.messages = artifact.get("messages") or raw.get("messages") or []
        started = _iso_seconds(raw.get("startedAt") or call.get("startedAt"))
        ended = _iso_seconds(raw.get("endedAt") or call.get("endedAt"))
        self.started_at, self.ended_at = started, ended
        seconds = _number(raw.get("durationSeconds"))
        if seconds is None and _number(raw.get("durationMs")) is not None:
            seconds = float(raw["durationMs"]) / 1000
        if seconds is None and started is not None and ended is not None:
            seconds = max(ended - started, 0.0)
        self.duration_s = seconds
        self.cost = _number(raw.get("cost"))
        metrics = artifact.get("performanceMetrics") or raw.get("performanceMetrics") or {}
        self.turn_latencies: list[dict[str, Any]] = [
            t for t in (metrics.get("turnLatencies") or []) if isinstance(t, dict)
        ]


def parse_end_of_call_report(message: ServerMessage) -> EndOfCallReport:
    return EndOfCallReport(message)


class CallBook:
    def __init__(self, core: Core, *, stale_after_s: float = 3 * 3600) -> None:
        self.core = core
        self.stale_after_s = stale_after_s
        self._live: dict[str, float] = {}
        self._next_prune = 0.0
        self._turn_rows: list[tuple[Any, ...]] = []  # turn timings waiting for the write under way
        self._turns_written: anyio.Event | None = None  # set when the write under way is done

    @property
    def live_count(self) -> int:
        return len(self._live)

    # --- live calls ------------------------------------------------------------------------
    def touch(self, call_id: str | None, *, source: str) -> bool:
        """Mark a call live (True when it just started); publishes `call.started` once per call."""
        if not call_id:
            return False
        now = time.monotonic()
        self._prune(now)
        new = call_id not in self._live
        self._live[call_id] = now
        if new:
            self.core.calls.started(call_id, source=source)
            self.core.events.publish("call.started", call_id=call_id, source=source, live_calls=len(self._live))
        return new

    def is_live(self, call_id: str) -> bool:
        return call_id in self._live

    def end(self, call_id: str | None, *, reason: str) -> bool:
        """Mark a call over; publishes `call.ended` if it was live."""
        if not call_id or self._live.pop(call_id, None) is None:
            return False
        self.core.calls.ended(call_id, reason=reason)
        self.core.events.publish("call.ended", call_id=call_id, reason=reason, live_calls=len(self._live))
        return True

    def _prune(self, now: float) -> None:
        if now < self._next_prune:  # once a minute is plenty, and keeps a turn's cost flat
            return
        self._next_prune = now + 60.0
        for call_id, seen in list(self._live.items()):
            if now - seen > self.stale_after_s:
                self.end(call_id, reason="stale")

    # --- persisted records -----------------------------------------------------------------
    async def once(self, call_id: str, kind: str, key: str = "") -> bool:
        """True the first time `(call_id, kind, key)` is seen: the idempotency ledger."""
        rowid = await self.core.store.write(
            lambda c: (
                c.execute(
                    "INSERT INTO vapi_server_messages(call_id, type, key, at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (call_id, kind, key, time.time()),
                ).rowcount
            )
        )
        return bool(rowid)

    async def record_status(self, call_id: str, status: str, *, caller: str | None, ended_reason: str = "") -> None:
        now = time.time()

        def txn(c: Conn) -> None:
            _ensure_call(c, call_id, caller, now)
            c.execute(
                "UPDATE vapi_calls SET status = ?, updated_at = ?, "
                "started_at = CASE WHEN ? = 'in-progress' THEN COALESCE(started_at, ?) ELSE started_at END, "
                "ended_at = CASE WHEN ? = 'ended' THEN COALESCE(ended_at, ?) ELSE ended_at END, "
                "ended_reason = CASE WHEN ? != '' THEN ? ELSE ended_reason END WHERE call_id = ?",
                (status, now, status, now, status, now, ended_reason, ended_reason, call_id),
            )

        await self.core.store.write(txn)

    async def record_report(self, call_id: str, report: EndOfCallReport, *, caller: str | None) -> None:
        now = time.time()

        def txn(c: Conn) -> None:
            _ensure_call(c, call_id, caller, now)
            c.execute(
                "UPDATE vapi_calls SET status = 'ended', ended_reason = ?, summary = ?, transcript = ?, "
                "recording_url = ?, duration_s = ?, cost = ?, started_at = COALESCE(?, started_at), "
                "ended_at = COALESCE(?, ended_at, ?), updated_at = ? WHERE call_id = ?",
                (
                    report.ended_reason,
                    report.summary,
                    report.transcript,
                    report.recording_url,
                    report.duration_s,
                    report.cost,
                    report.started_at,
                    report.ended_at,
                    now,
                    now,
                    call_id,
                ),
            )
            for idx, t in enumerate(report.turn_latencies):
                c.execute(
                    "INSERT INTO vapi_turn_latencies(call_id, idx, model_ms, voice_ms, transcriber_ms, "
                    "endpointing_ms, turn_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id, idx) DO UPDATE SET "
                    "model_ms = excluded.model_ms, voice_ms = excluded.voice_ms, "
                    "transcriber_ms = excluded.transcriber_ms, endpointing_ms = excluded.endpointing_ms, "
                    "turn_ms = excluded.turn_ms",
                    (
                        call_id,
                        idx,
                        _number(t.get("modelLatency")),
                        _number(t.get("voiceLatency")),
                        _number(t.get("transcriberLatency")),
                        _number(t.get("endpointingLatency")),
                        _number(t.get("turnLatency")),
                    ),
                )

        await self.core.store.write(txn)

    async def record_turn(
        self,
        call_id: str,
        *,
        outcome: str,
        first_content_s: float | None,
        model_ttft_s: float | None,
        total_s: float,
        held: bool,
        job_id: str | None,
    ) -> None:
        """Pete's own timing of one Custom LLM turn (request in → first content → end).

        Turns that end while an earlier one's row is being written go in the next write, one
        transaction for all of them, in the order they ended (under load the single writer is
        what every turn's own conversation write queues behind). Spooled while the database is
        unreachable (the caller has been answered already).
        """
        self._turn_rows.append(
            (
                call_id,
                time.time(),
                outcome,
                None if first_content_s is None else first_content_s * 1000,
                None if model_ttft_s is None else model_ttft_s * 1000,
                total_s * 1000,
                int(held),
                job_id,
            )
        )
        if self._turns_written is not None:
            return  # the write under way takes this row in its next round
        self._turns_written = anyio.Event()
        try:
            while self._turn_rows:
                rows, self._turn_rows = self._turn_rows, []
                try:
                    await self.core.store.write_or_defer(
                        f"turn timing of call {rows[0][0]}" + (f" and {len(rows) - 1} more" if len(rows) > 1 else ""),
                        lambda c, rows=rows: c.executemany(_INSERT_TURN, rows),
                    )
                except anyio.get_cancelled_exc_class():
                    self._turn_rows[:0] = rows  # not written: the next turn's write takes them first
                    raise
        finally:
            self._turns_written.set()
            self._turns_written = None

    async def _turns_settled(self) -> None:
        """Wait for a turn-timing write under way (so a read sees every turn that has ended)."""
        if self._turns_written is not None:
            await self._turns_written.wait()

    async def call(self, call_id: str) -> dict[str, Any] | None:
        rows = await self.core.store.query("SELECT * FROM vapi_calls WHERE call_id = ?", (call_id,))
        return rows[0] if rows else None

    async def turns(self, call_id: str) -> list[dict[str, Any]]:
        await self._turns_settled()
        return await self.core.store.query("SELECT * FROM vapi_turns WHERE call_id = ? ORDER BY id", (call_id,))


def _ensure_call(c: Conn, call_id: str, caller: str | None, now: float) -> None:
    c.execute(
        "INSERT INTO vapi_calls(call_id, caller, updated_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (call_id, mask_number(caller) if caller else "", now),
    )
