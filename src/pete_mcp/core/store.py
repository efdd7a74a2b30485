"""Pete's store: conversations, model state, switch/deploy records, and the faces' records.

One facade over an engine (`storage.SQLiteEngine` by default, `storage.PostgresEngine` when
DATABASE_URL is set); callers write portable SQL with `?` placeholders against `storage.Conn`
and never ask which engine they have. The schema is `storage.MIGRATIONS`, applied at open: a new
table is a new migration entry there. Engine calls that could wait run off the event loop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from .errors import PeteError, StoreError, StoreUnavailable
from .settings import Settings
from .storage import (
    Conn,
    Engine,
    Leadership,
    SpoolStats,
    SQLiteEngine,
    WouldBlock,
    WriteSpool,
    engine_from_settings,
)

__all__ = ["STATE_CHANNEL", "Store", "StoredMessage", "store_from_settings"]

T = TypeVar("T")

STATE_CHANNEL = "pete_state"  # payload: the kv key that changed


class StoredMessage(dict[str, Any]):
    """A row of `messages` as a dict: role, content, model, provider, seq, extra (decoded)."""


class Store:
    """The database behind `engine` (a path means SQLite at that path, created on first use)."""

    def __init__(self, engine: Engine | Path, *, spool_limit: int = 10_000) -> None:
        self.engine: Engine = SQLiteEngine(engine) if isinstance(engine, Path) else engine
        self.spool = WriteSpool(limit=spool_limit)

    @property
    def location(self) -> str:
        """Where the data lives (any password redacted)."""
        return self.engine.location

    # --- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Connect and migrate. Raises ConfigError (unreachable DATABASE_URL) or StoreError."""
        self.engine.open()

    def close(self) -> None:
        self.engine.close()

    # --- primitives ------------------------------------------------------------------------
    def _failed(self, exc: BaseException, doing: str) -> StoreError:
        if isinstance(exc, self.engine.unavailable):
            return StoreUnavailable(f"the {self.engine.name} database at {self.location} is unreachable ({doing}).")
        return StoreError(f"the store could not {doing}: {exc}")

    async def write(self, fn: Callable[[Conn], T]) -> T:
        """Run `fn(conn)` in one write transaction: right here when the engine can do it without
        waiting (SQLite, lock free), else off the event loop. Keep `fn` to a few statements.

        Raises:
            StoreUnavailable: the database cannot be reached. StoreError: it refused the write.
        """
        try:
            try:
                return self.engine.write_nowait(fn)
            except WouldBlock:
                return await anyio.to_thread.run_sync(self.engine.write, fn)
        except PeteError:
            raise
        except self.engine.errors as exc:
            raise self._failed(exc, "write") from exc

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement; returns the number of rows it changed."""
        return await self.write(lambda c: c.execute(sql, params).rowcount)

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One `INSERT ... RETURNING <id>`; returns the id."""

        def txn(c: Conn) -> int:
            row = c.execute(sql, params).fetchone()
            return int(next(iter(row.values()))) if row else 0

        return await self.write(txn)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A read, off the event loop (a listing or an export can take a while)."""
        try:
            return await anyio.to_thread.run_sync(self.engine.read, sql, params)
        except PeteError:
            raise
        except self.engine.errors as exc:
            raise self._failed(exc, "read") from exc

    async def lookup(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A read an index answers at once (a few rows by key): right here when the engine can
        do it without waiting (SQLite, lock free), else off the loop like `query`."""
        try:
            try:
                return self.engine.read_nowait(sql, params)
            except WouldBlock:
                return await anyio.to_thread.run_sync(self.engine.read, sql, params)
        except PeteError:
            raise
        except self.engine.errors as exc:
            raise self._failed(exc, "read") from exc

    def writable(self) -> bool:
        """True when a write transaction goes through (for health checks)."""
        try:
            self.engine.write(lambda c: c.execute("SELECT 1"))
        except (PeteError, *self.engine.errors):
            return False
        return True

    # --- writes that survive an outage -----------------------------------------------------
    async def write_or_defer(self, label: str, fn: Callable[[Conn], object]) -> bool:
        """Write now, or — while the database is unreachable — spool it for replay in order.

        True when written now. Once anything waits in the spool, later writes queue behind it.
        """
        if not len(self.spool):
            try:
                await self.write(fn)
                return True
            except StoreUnavailable:
                pass
        self.spool.add(label, fn)
        return False

    def spool_stats(self) -> SpoolStats:
        return self.spool.stats()

    async def run_spool(self, *, retry_s: float = 0.5) -> None:
        """Replay spooled writes whenever the database is back (run as a background task)."""
        await self.spool.run(self.write, retry_s=retry_s)

    # --- replicas ----------------------------------------------------------------------------
    async def watch_state(self, on_change: Callable[[str], Awaitable[None]]) -> None:
        """Call `on_change(key)` when another replica changes a state key; `"*"` after (re)connecting."""
        await self.engine.watch(STATE_CHANNEL, on_change, lambda: on_change("*"))

    def leadership(self, name: str) -> Leadership:
        return self.engine.leadership(name)

    # --- key/value state -------------------------------------------------------------------
    async def get_state(self, key: str) -> Any:
        rows = await self.query("SELECT value FROM kv WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else None

    async def set_state(self, key: str, value: Any) -> None:
        """Store `value` under `key` and tell the other replicas (at commit)."""

        def txn(c: Conn) -> None:
            c.execute(
                "INSERT INTO kv(key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, json.dumps(value), time.time()),
            )
            c.notify(STATE_CHANNEL, key)

        await self.write(txn)

    # --- conversations ---------------------------------------------------------------------
    async def append_messages(
        self,
        conversation_id: str,
        messages: Sequence[dict[str, Any]],
        *,
        source: str,
        model: str | None = None,
        provider: str | None = None,
    ) -> int:
        """Append messages (dicts with role, content, and any extra keys) to a thread; returns next seq."""
        return await self.write(append_txn(conversation_id, messages, source=source, model=model, provider=provider))

    async def append_unseen(
        self,
        conversation_id: str,
        messages: Sequence[dict[str, Any]],
        *,
        source: str,
        unseen: Callable[[list[dict[str, Any]], Sequence[dict[str, Any]]], list[dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        """In one write transaction: read the thread, append the messages `unseen(thread, messages)` picks.

        For callers that resend a whole conversation each turn (VAPI): concurrent resends of the
        same turn — on one replica or several — serialise on the conversation's row lock, so the
        turn is stored once.
        """
        return await self.write(unseen_txn(conversation_id, messages, source=source, unseen=unseen))

    async def thread(self, conversation_id: str) -> list[StoredMessage]:
        rows = await self.query(
            "SELECT seq, role, content, extra, model, provider, created_at FROM messages "
            "WHERE conversation_id = ? ORDER BY seq",
            (conversation_id,),
        )
        out: list[StoredMessage] = []
        for row in rows:
            raw_extra = row.pop("extra")
            extra = json.loads(raw_extra) if raw_extra else {}
            out.append(StoredMessage({**row, **extra}))
        return out

    async def conversation_exists(self, conversation_id: str) -> bool:
        rows = await self.query("SELECT 1 AS one FROM conversations WHERE id = ?", (conversation_id,))
        return bool(rows)


def append_txn(
    conversation_id: str,
    messages: Sequence[dict[str, Any]],
    *,
    source: str,
    model: str | None = None,
    provider: str | None = None,
) -> Callable[[Conn], int]:
    """The transaction body of `Store.append_messages` (also what the spool replays)."""

    def txn(conn: Conn) -> int:
        seq = _lock_thread(conn, conversation_id, source)
        return _insert_messages(conn, conversation_id, messages, seq, model=model, provider=provider)

    return txn


def unseen_txn(
    conversation_id: str,
    messages: Sequence[dict[str, Any]],
    *,
    source: str,
    unseen: Callable[[list[dict[str, Any]], Sequence[dict[str, Any]]], list[dict[str, Any]]],
) -> Callable[[Conn], list[dict[str, Any]]]:
    """The transaction body of `Store.append_unseen` (also what the spool replays)."""

    def txn(conn: Conn) -> list[dict[str, Any]]:
        _touch_thread(conn, conversation_id, source)
        rows = conn.execute(
            "SELECT seq, role, content, extra FROM messages WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
        ).fetchall()
        seq = int(rows[-1]["seq"]) + 1 if rows else 0
        thread = [
            {"role": r["role"], "content": r["content"], **(json.loads(r["extra"]) if r["extra"] else {})} for r in rows
        ]
        new = unseen(thread, messages)
        _insert_messages(conn, conversation_id, new, seq, model=None, provider=None)
        return new

    return txn


def _touch_thread(conn: Conn, conversation_id: str, source: str) -> None:
    """Create or touch the conversation row, which locks it until commit.

    The upsert is the lock: on PostgreSQL a second transaction appending to the same thread (on
    any replica) waits here until the first commits, and its next statement (a new snapshot
    under READ COMMITTED) sees the first one's messages; on SQLite `BEGIN IMMEDIATE` already
    makes writes one at a time.
    """
    now = time.time()
    conn.execute(
        "INSERT INTO conversations(id, source, created_at, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at",
        (conversation_id, source, now, now),
    )


def _lock_thread(conn: Conn, conversation_id: str, source: str) -> int:
    """Lock the thread (`_touch_thread`) and return its next seq."""
    _touch_thread(conn, conversation_id, source)
    row = conn.execute(
        "SELECT COALESCE(MAX(seq), -1) + 1 AS next FROM messages WHERE conversation_id = ?", (conversation_id,)
    ).fetchone()
    return int(row["next"]) if row else 0


def _insert_messages(
    conn: Conn,
    conversation_id: str,
    messages: Sequence[dict[str, Any]],
    seq: int,
    *,
    model: str | None,
    provider: str | None,
) -> int:
    """Append `messages` from `seq` inside the caller's transaction; returns the next seq."""
    now = time.time()
    rows = []
    for message in messages:
        extra = {k: v for k, v in message.items() if k not in ("role", "content")}
        rows.append(
            (
                conversation_id,
                seq,
                message["role"],
                message.get("content") or "",
                json.dumps(extra) if extra else None,
                model if message["role"] == "assistant" else None,
                provider if message["role"] == "assistant" else None,
                now,
            )
        )
        seq += 1
    if rows:
        conn.executemany(
            "INSERT INTO messages(conversation_id, seq, role, content, extra, model, provider, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return seq


def store_from_settings(settings: Settings) -> Store:
    """The store the settings describe: PostgreSQL when DATABASE_URL is set, else SQLite in DATA_DIR.

    Every process that opens Pete's data (the gateway, `pete tenants`, `pete up`'s seeding) uses this,
    so none of them can open a different database than the gateway.
    """
    return Store(engine_from_settings(settings), spool_limit=settings.store_spool_limit)
