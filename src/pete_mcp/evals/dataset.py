"""`pete export-dataset`: finished calls as chat fine-tuning JSONL, redacted, filtered, de-duplicated.

One line per call: `{"messages": [...]}` in OpenAI's chat format (system, user, assistant,
and the assistant's `tool_calls` with their `tool` results), which is also what Unsloth and
Axolotl read as a chat dataset. What the gateway said itself (holding phrase, apology) is left
out: the model should learn its own answers. A call whose caller opted out
(`conversation_opt_outs`) is never exported, whatever the filters say.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from pete_mcp.core import InputError, Store

from .checks import CallRecord, CheckContext, TurnRecord, run_check
from .redact import Redactor
from .suite import CheckSpec, SuiteTenant

__all__ = ["ExportFilters", "ExportReport", "export_dataset", "set_opt_out"]

_GATEWAY = "gateway"
_QUALITY_CHECKS = ("answered", "fits_speech", "no_markdown", "no_other_tenant")


@dataclass(frozen=True)
class ExportFilters:
    since: float | None = None  # epoch seconds, call start
    until: float | None = None
    outcomes: Sequence[str] = ()  # last turn's outcome starts with one of these (answer, transfer, emergency...)
    eval_pass: bool = False  # only calls whose replies pass the call-level checks
    min_turns: int = 1  # caller turns


@dataclass
class ExportReport:
    written: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


async def set_opt_out(store: Store, conversation_id: str, *, opted_out: bool = True, reason: str = "") -> None:
    """Mark (or unmark) a call as never to be exported for training."""
    if opted_out:
        await store.execute(
            "INSERT INTO conversation_opt_outs(conversation_id, at, reason) VALUES (?, ?, ?) "
            "ON CONFLICT(conversation_id) DO UPDATE SET reason = excluded.reason",
            (conversation_id, time.time(), reason),
        )
    else:
        await store.execute("DELETE FROM conversation_opt_outs WHERE conversation_id = ?", (conversation_id,))


def _training_messages(thread: Sequence[dict[str, Any]], system_prompt: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = [m for m in thread if m["role"] == "system"][-1:]
    out.append({"role": "system", "content": system[0]["content"] if system else system_prompt})
    for m in thread:
        role = m["role"]
        if role == "system":
            continue
        if role == "assistant" and m.get("provider") == _GATEWAY and not m.get("tool_calls"):
            continue  # holding phrase, apology: the gateway's words, not the model's
        message: dict[str, Any] = {"role": role, "content": m.get("content") or ""}
        if m.get("tool_calls"):
            message["tool_calls"] = m["tool_calls"]
        if role == "tool" and m.get("tool_call_id"):
            message["tool_call_id"] = m["tool_call_id"]
        out.append(message)
    while out and out[-1]["role"] != "assistant":
        out.pop()  # a training example ends on the assistant
    return out


def _passes_quality(messages: list[dict[str, Any]], caller: str, tenants: list[SuiteTenant]) -> bool:
    turns: list[TurnRecord] = []
    for m in messages:
        if m["role"] == "user":
            turns.append(TurnRecord(caller=m["content"], said=""))
        elif m["role"] == "assistant" and turns:
            turns[-1].said = (turns[-1].said + " " + m["content"]).strip()
            turns[-1].tool_calls = turns[-1].tool_calls or list(m.get("tool_calls") or [])
    record = CallRecord(case_id="export", call_id="export", caller=caller, turns=turns)
    ctx = CheckContext(tenants=tenants)
    return all(run_check(CheckSpec.model_validate(name), record, ctx).passed for name in _QUALITY_CHECKS)


async def export_dataset(
    store: Store,
    out: Path,
    *,
    system_prompt: str,
    filters: ExportFilters = ExportFilters(),
    force: bool = False,
) -> ExportReport:
    """Write the finished VAPI calls that pass `filters` to `out` as JSONL.

    Raises:
        InputError: `out` exists and `force` is not set.
    """
    target = anyio.Path(out)
    if await target.exists() and not force:
        raise InputError(f"{out} already exists; pass --force to overwrite it.")
    tenant_rows = await store.query("SELECT phone, name, unit, property FROM tenants")
    tenants = [SuiteTenant.model_validate(r) for r in tenant_rows if r["phone"] and r["name"]]
    redactor = Redactor.for_directory(tenant_rows)
    opted_out = {r["conversation_id"] for r in await store.query("SELECT conversation_id FROM conversation_opt_outs")}
    calls = await store.query(
        "SELECT call_id, caller, started_at, ended_at FROM vapi_calls WHERE ended_at IS NOT NULL ORDER BY ended_at"
    )
    report = ExportReport()
    seen: set[str] = set()
    lines: list[str] = []
    for call in calls:
        cid = call["call_id"]
        if cid in opted_out:
            report.skip("opted out")
            continue
        at = call["started_at"] or call["ended_at"]
        if (filters.since is not None and at < filters.since) or (filters.until is not None and at >= filters.until):
            report.skip("outside the date range")
            continue
        if filters.outcomes:
            rows = await store.query(
                "SELECT outcome FROM vapi_turns WHERE call_id = ? ORDER BY id DESC LIMIT 1", (cid,)
            )
            outcome = rows[0]["outcome"] if rows else ""
            if not any(outcome.startswith(o) for o in filters.outcomes):
                report.skip("other outcome")
                continue
        messages = _training_messages(await store.thread(cid), system_prompt)
        if sum(m["role"] == "user" for m in messages) < max(filters.min_turns, 1):
            report.skip("too few turns")
            continue
        if filters.eval_pass and not _passes_quality(messages, call["caller"] or "", tenants):
            report.skip("failed the call checks")
            continue
        redacted = redactor.value(messages)
        key = hashlib.sha256(json.dumps(redacted, sort_keys=True).encode()).hexdigest()
        if key in seen:
            report.skip("duplicate")
            continue
        seen.add(key)
        lines.append(json.dumps({"messages": redacted}, ensure_ascii=False))
    await target.parent.mkdir(parents=True, exist_ok=True)
    await target.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    report.written = len(lines)
    return report
