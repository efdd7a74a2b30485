"""Conversation threads: persist every message as it happens, and build each turn's context.

The context for a turn is the model's system prompt plus the persisted thread, fitted to the
serving model's context window: the newest whole turns that fit, a tool call never split from
its result. Because it is rebuilt from the store for every turn, it survives model switches,
provider failover and a restart.

A turn that resends its whole conversation (`sync`, VAPI) gets its context from the same
transaction that stored it: the sync reads the thread under the conversation's lock, so the
thread it read plus what it appended is the thread at commit, and the turn's `context` uses that
instead of reading it again (one database round trip less before the first token). This
hand-over lives in the turn's own task context and is used once.

While the database is unreachable a turn still gets its context: writes go to the store's
spool (replayed in order when it is back) and the thread is kept in memory until then.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pete_mcp.contract import Message

from .errors import InputError, StoreUnavailable
from .models import ModelSpec
from .storage import Conn
from .store import Store, append_txn, unseen_txn

__all__ = [
    "DEFAULT_RESERVE_TOKENS",
    "Conversations",
    "TokenCount",
    "estimate_tokens",
    "fit_prompt",
    "fit_to_window",
    "unseen_messages",
]

TokenCount = Callable[[dict[str, Any]], int]  # tokens one message takes in a prompt

# A tokenizer-free estimate, deliberately pessimistic: BPE tokenizers average about four bytes
# of English a token; counting 3.5 keeps a margin for numbers, names and other scripts.
BYTES_PER_TOKEN = 3.5
MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators a chat template adds per message
DEFAULT_RESERVE_TOKENS = 256  # room left for the reply when the caller names no max_tokens


def estimate_tokens(message: dict[str, Any]) -> int:
    """Tokens `message` takes in a prompt (content plus any tool calls), estimated without a tokenizer."""
    size = len(str(message.get("content") or "").encode())
    if message.get("tool_calls"):
        size += len(json.dumps(message["tool_calls"], separators=(",", ":")).encode())
    return math.ceil(size / BYTES_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS


def _units(thread: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group the thread so an assistant's tool call and the tool results that answer it stay together.

    A tool result with no call before it (its call was never stored) is dropped: providers
    reject a tool message that answers nothing.
    """
    units: list[list[dict[str, Any]]] = []
    for message in thread:
        if message.get("role") == "tool":
            if units and units[-1][0].get("role") == "assistant" and units[-1][0].get("tool_calls"):
                units[-1].append(message)
            continue
        units.append([message])
    return units


def _trim_to(message: dict[str, Any], tokens: int) -> dict[str, Any]:
    """`message` with its content cut from the front to about `tokens` (the latest words matter most)."""
    keep = max(0, int((tokens - MESSAGE_OVERHEAD_TOKENS) * BYTES_PER_TOKEN))
    content = str(message.get("content") or "")
    if len(content.encode()) <= keep:
        return message
    tail = content.encode()[-keep:].decode(errors="ignore") if keep else ""
    return {**message, "content": "…" + tail}


def fit_to_window(
    system: list[dict[str, Any]],
    thread: Sequence[dict[str, Any]],
    window: int,
    reserve: int,
    count: TokenCount = estimate_tokens,
) -> list[dict[str, Any]]:
    """System messages plus the most recent turns that fit in `window - reserve` tokens.

    Whole units only: an assistant tool call is never separated from its results. The
    newest message is always kept (trimmed from the front if it alone is too long), so a
    turn never goes out without what the caller just said. `reserve` (room for the reply)
    is capped at half the window. `count` defaults to the tokenizer-free estimate.
    """
    reserve = min(reserve, window // 2)
    budget = window - reserve - sum(count(m) for m in system)
    kept: list[list[dict[str, Any]]] = []
    for unit in reversed(_units(thread)):
        cost = sum(count(m) for m in unit)
        if cost > budget:
            if not kept and len(unit) == 1:
                kept.append([_trim_to(unit[0], max(budget, MESSAGE_OVERHEAD_TOKENS + 16))])
            elif not kept:
                kept.append(unit)
            break
        budget -= cost
        kept.append(unit)
    return [*system, *(m for unit in reversed(kept) for m in unit)]


def fit_prompt(
    system: list[dict[str, Any]],
    messages: Sequence[dict[str, Any]],
    window: int,
    reserve: int,
    *,
    count: TokenCount = estimate_tokens,
    model: str = "the model",
) -> list[dict[str, Any]]:
    """`fit_to_window` for a prompt someone typed: older turns go the same way, but the newest
    message is never cut — when it cannot fit, the caller is told so.

    Raises:
        InputError: the system prompt and the newest message exceed `window - reserve`.
    """
    reserve = min(reserve, window // 2)
    need = sum(count(m) for m in system) + sum(count(m) for m in messages[-1:])
    if need > window - reserve:
        raise InputError(
            f"The prompt is ~{need:,} tokens; {model}'s window is {window:,} with {reserve:,} reserved for the reply.",
            hint="Shorten the prompt, lower max_tokens, or choose a model with a larger context_window (list_models).",
        )
    return fit_to_window(system, messages, window, reserve, count)


def _spoken(message: dict[str, Any]) -> str:
    return " ".join(str(message.get("content") or "").split()).casefold()


def _same_message(stored: dict[str, Any], incoming: dict[str, Any]) -> bool:
    """Same role and text; an assistant text also matches a prefix of itself (barge-in cut it short)."""
    if stored.get("role") != incoming.get("role"):
        return False
    a, b = _spoken(stored), _spoken(incoming)
    if a == b:
        return True
    return stored.get("role") == "assistant" and bool(a and b) and (a.startswith(b) or b.startswith(a))


def unseen_messages(thread: Sequence[dict[str, Any]], incoming: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages of a resent conversation that come after everything the thread already holds.

    Incoming messages are matched in order against the thread (skipping thread messages the
    sender never saw, such as a reply's tool-call markup); what follows the last match is new.
    """
    position, last_match = 0, -1
    for i, message in enumerate(incoming):
        for k in range(position, len(thread)):
            if _same_message(thread[k], message):
                position, last_match = k + 1, i
                break
    return list(incoming[last_match + 1 :])


def _as_stored(message: dict[str, Any]) -> dict[str, Any]:
    """`message` as the store gives it back: content never missing, the rest kept."""
    return {
        "role": message["role"],
        "content": message.get("content") or "",
        **{k: v for k, v in message.items() if k not in ("role", "content")},
    }


@dataclass(slots=True)
class _Committed:
    """The thread of `conversation_id` as a sync's transaction committed it, for this turn's context."""

    conversation_id: str
    thread: list[dict[str, Any]] | None


# Per turn (the task context a face answers the turn in, inherited by its child tasks).
_COMMITTED: ContextVar[_Committed | None] = ContextVar("pete_committed_thread", default=None)


def _forget_committed(conversation_id: str) -> list[dict[str, Any]] | None:
    """Take (and drop) this turn's committed thread of `conversation_id`, if it has one."""
    committed = _COMMITTED.get()
    if committed is None or committed.conversation_id != conversation_id:
        return None
    thread, committed.thread = committed.thread, None
    return thread


class Conversations:
    def __init__(self, store: Store, *, offline_limit: int = 1000) -> None:
        self.store = store
        self.offline_limit = offline_limit
        # Threads as this process saw them while writes waited in the spool (newest last).
        self._offline: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        store.spool.on_drained.append(self._offline.clear)

    def _remember(self, conversation_id: str, messages: Sequence[dict[str, Any]]) -> None:
        thread = self._offline.pop(conversation_id, [])
        thread.extend(messages)
        self._offline[conversation_id] = thread
        while len(self._offline) > self.offline_limit:
            self._offline.popitem(last=False)

    async def sync(self, conversation_id: str, messages: Sequence[Message], *, source: str) -> list[Message]:
        """Persist the part of a resent whole conversation the thread does not hold yet; return it.

        VAPI resends the entire conversation every turn; this stores each message once, in one
        transaction, so duplicate deliveries of a turn cannot store it twice (on any replica).
        Its commit does not wait for the disk (`Conn.defer_flush`): what it stores comes again in
        the next resend, and the reply's commit right after flushes it anyway. While the
        database is away the resend is spooled whole and de-duplicated on replay.
        """
        payload = [m.model_dump(exclude_none=True) for m in messages]
        if not len(self.store.spool):
            committed: list[dict[str, Any]] = []

            def pick(thread: list[dict[str, Any]], incoming: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
                new = unseen_messages(thread, incoming)
                committed[:] = [*thread, *(_as_stored(m) for m in new)]  # under the lock: the thread at commit
                return new

            store_unseen = unseen_txn(conversation_id, payload, source=source, unseen=pick)

            def txn(conn: Conn) -> list[dict[str, Any]]:
                conn.defer_flush()  # VAPI sends the whole transcript again next turn: no wait for the disk
                return store_unseen(conn)

            try:
                new = await self.store.write(txn)
            except StoreUnavailable:
                pass
            else:
                _COMMITTED.set(_Committed(conversation_id, committed))
                return [Message.model_validate(m) for m in new]
        seen = self._offline.get(conversation_id, [])
        new = unseen_messages(seen, payload) if seen else payload
        self._remember(conversation_id, new)
        self.store.spool.add(
            f"messages of {conversation_id}",
            unseen_txn(conversation_id, payload, source=source, unseen=unseen_messages),
        )
        return [Message.model_validate(m) for m in new]

    async def ids(self, *, prefix: str = "", limit: int = 20) -> list[str]:
        """Stored conversation ids that start with `prefix`, most recently active first (completions)."""
        rows = await self.store.query(
            "SELECT id FROM conversations WHERE substr(id, 1, ?) = ? ORDER BY updated_at DESC LIMIT ?",
            (len(prefix), prefix, limit),
        )
        return [str(row["id"]) for row in rows]

    async def append(
        self,
        conversation_id: str,
        messages: Sequence[dict[str, Any]],
        *,
        source: str,
        model: str | None = None,
        provider: str | None = None,
    ) -> None:
        """Append raw message dicts (tool-call exchanges too); spooled while the database is away."""
        if not messages:
            return
        _forget_committed(conversation_id)
        txn = append_txn(conversation_id, messages, source=source, model=model, provider=provider)
        if not await self.store.write_or_defer(f"messages of {conversation_id}", txn):
            self._remember(conversation_id, messages)

    async def record(self, conversation_id: str, messages: Sequence[Message], *, source: str) -> None:
        await self.append(conversation_id, [m.model_dump(exclude_none=True) for m in messages], source=source)

    async def record_reply(self, conversation_id: str, text: str, *, source: str, model: str, provider: str) -> None:
        await self.append(
            conversation_id, [{"role": "assistant", "content": text}], source=source, model=model, provider=provider
        )

    async def _thread(self, conversation_id: str) -> list[dict[str, Any]]:
        offline = self._offline.get(conversation_id)
        if offline is not None and len(self.store.spool):
            return [dict(m) for m in offline]
        try:
            stored = await self.store.thread(conversation_id)
        except StoreUnavailable:
            return [dict(m) for m in offline or []]
        return [{k: v for k, v in m.items() if k not in ("seq", "model", "provider", "created_at")} for m in stored]

    async def context(
        self, conversation_id: str, spec: ModelSpec, *, reserve: int = DEFAULT_RESERVE_TOKENS
    ) -> list[Message]:
        """The persisted thread as context for `spec`: its system prompt and the recent turns that fit.

        The thread's own (latest) system message wins over the model's default prompt; the
        window is the serving model's, so a switch to a smaller model keeps the newest turns.
        Right after this turn's `sync` the thread is the one that sync committed (not read again).
        """
        committed = _forget_committed(conversation_id)
        thread = committed if committed is not None and not len(self.store.spool) else None
        if thread is None:
            thread = await self._thread(conversation_id)
        system = [m for m in thread if m["role"] == "system"][-1:]
        if not system and spec.system_prompt:
            system = [{"role": "system", "content": spec.system_prompt}]
        rest = [m for m in thread if m["role"] != "system"]
        return [Message.model_validate(m) for m in fit_to_window(system, rest, spec.context_window, reserve)]
