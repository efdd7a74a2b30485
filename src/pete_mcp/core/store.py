"""Pete's SQLite store: conversations, model state, switch/deploy records, and the faces' records.

WAL mode, one writer connection (every write in `BEGIN IMMEDIATE`), one reader connection;
both used off the event loop through `anyio.to_thread`, each behind its own lock.
Modules that need tables add their DDL to `SCHEMA` (idempotent `CREATE ... IF NOT EXISTS`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from .errors import StoreError

__all__ = ["SCHEMA", "Store", "StoredMessage"]

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    extra TEXT,
    model TEXT,
    provider TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
CREATE TABLE IF NOT EXISTS switches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    from_model TEXT,
    to_model TEXT NOT NULL,
    warmup_s REAL,
    by TEXT NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS deploys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    image TEXT NOT NULL,
    previous_image TEXT,
    status TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'deploy'
);
CREATE TABLE IF NOT EXISTS metric_minutes (
    minute INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    alias TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (minute, provider, model)
);
CREATE TABLE IF NOT EXISTS metric_errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    alias TEXT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_errors_at ON metric_errors(at);
-- Jamie's front desk (pete_mcp.property_desk); tenants holds three demo tenants.
CREATE TABLE IF NOT EXISTS tenants (
    phone TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    property TEXT NOT NULL
);
INSERT OR IGNORE INTO tenants(phone, name, unit, property) VALUES
    ('+15551234567', 'Dana Ruiz', '4B', 'Maple Court'),
    ('+15552345678', 'Sam Okafor', '12', 'Harbor View'),
    ('+15553456789', 'Lee Chen', '2A', 'Maple Court');
CREATE TABLE IF NOT EXISTS maintenance_requests (
    ticket INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    issue_key TEXT NOT NULL,
    unit TEXT NOT NULL,
    property TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL,
    description TEXT NOT NULL,
    urgency TEXT NOT NULL,
    permission_to_enter INTEGER,
    callback_number TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'open',
    created_at REAL NOT NULL,
    UNIQUE (call_id, issue_key)
);
INSERT INTO sqlite_sequence(name, seq) SELECT 'maintenance_requests', 1000
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'maintenance_requests');
CREATE TABLE IF NOT EXISTS office_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    number TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL,
    preferred_time TEXT NOT NULL DEFAULT '',
    dedupe_key TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (call_id, kind, dedupe_key)
);
CREATE TABLE IF NOT EXISTS emergencies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    category TEXT NOT NULL,
    summary TEXT NOT NULL,
    callback_number TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    UNIQUE (call_id, category)
);
-- The VAPI face (pete_vapi): calls, server-message idempotency, tool results, turn timings.
CREATE TABLE IF NOT EXISTS vapi_calls (
    call_id TEXT PRIMARY KEY,
    started_at REAL,
    ended_at REAL,
    status TEXT NOT NULL DEFAULT '',
    ended_reason TEXT NOT NULL DEFAULT '',
    caller TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '',
    transcript TEXT NOT NULL DEFAULT '',
    recording_url TEXT NOT NULL DEFAULT '',
    duration_s REAL,
    cost REAL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS vapi_server_messages (
    call_id TEXT NOT NULL,
    type TEXT NOT NULL,
    key TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (call_id, type, key)
);
CREATE TABLE IF NOT EXISTS vapi_tool_results (
    tool_call_id TEXT PRIMARY KEY,
    call_id TEXT NOT NULL,
    name TEXT NOT NULL,
    result TEXT,
    error TEXT,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS vapi_turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    at REAL NOT NULL,
    outcome TEXT NOT NULL,
    first_content_ms REAL,
    model_ttft_ms REAL,
    total_ms REAL NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,
    job_id TEXT
);
CREATE INDEX IF NOT EXISTS vapi_turns_call ON vapi_turns(call_id);
CREATE TABLE IF NOT EXISTS vapi_turn_latencies (
    call_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    model_ms REAL,
    voice_ms REAL,
    transcriber_ms REAL,
    endpointing_ms REAL,
    turn_ms REAL,
    PRIMARY KEY (call_id, idx)
);
-- Saved `pete eval` runs (pete_mcp.core.eval_scores): one row per model and suite per run.
CREATE TABLE IF NOT EXISTS eval_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    at REAL NOT NULL,
    model TEXT NOT NULL,
    suite TEXT NOT NULL,
    suite_version INTEGER NOT NULL,
    cases INTEGER NOT NULL,
    cases_passed INTEGER NOT NULL,
    score REAL NOT NULL,
    checks TEXT NOT NULL DEFAULT '{}',
    failing TEXT NOT NULL DEFAULT '[]',
    log_path TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS eval_runs_model ON eval_runs(model, id);
-- Calls whose caller opted out of having their transcript used for training (never exported).
CREATE TABLE IF NOT EXISTS conversation_opt_outs (
    conversation_id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
-- GitHub webhook deliveries already handled (X-GitHub-Delivery), so a redelivery does nothing.
CREATE TABLE IF NOT EXISTS github_deliveries (
    delivery_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    at REAL NOT NULL,
    outcome TEXT NOT NULL DEFAULT ''
);
"""


class StoredMessage(dict[str, Any]):
    """A row of `messages` as a dict: role, content, model, provider, seq, extra (decoded)."""


class Store:
    """The SQLite database at `path` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
            self._writer.executescript(SCHEMA)
            self._reader = self._connect()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store at {self.path}: {exc}", hint="Check PETE data_dir.") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def close(self) -> None:
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = None

    # --- primitives ------------------------------------------------------------------------
    def _write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._writer is None:
            raise StoreError("the store is not open.")
        with self._write_lock:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self._writer)
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")
            return result

    def _read_sync(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        if self._reader is None:
            raise StoreError("the store is not open.")
        with self._read_lock:
            return self._reader.execute(sql, params).fetchall()

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` in one write transaction, off the event loop."""
        try:
            return await anyio.to_thread.run_sync(self._write_sync, fn)
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not write: {exc}") from exc

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement; returns lastrowid."""
        return await self.write(lambda c: c.execute(sql, params).lastrowid or 0)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            rows = await anyio.to_thread.run_sync(self._read_sync, sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"the store could not read: {exc}") from exc
        return [dict(r) for r in rows]

    def writable(self) -> bool:
        """True when a write transaction goes through (for health checks)."""
        try:
            self._write_sync(lambda c: c.execute("SELECT 1"))
        except (StoreError, sqlite3.Error):
            return False
        return True

    # --- key/value state -------------------------------------------------------------------
    async def get_state(self, key: str) -> Any:
        rows = await self.query("SELECT value FROM kv WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else None

    async def set_state(self, key: str, value: Any) -> None:
        await self.execute(
            "INSERT INTO kv(key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, json.dumps(value), time.time()),
        )

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

        def txn(conn: sqlite3.Connection) -> int:
            return _insert_messages(conn, conversation_id, messages, source=source, model=model, provider=provider)

        return await self.write(txn)

    async def append_unseen(
        self,
        conversation_id: str,
        messages: Sequence[dict[str, Any]],
        *,
        source: str,
        unseen: Callable[[list[dict[str, Any]], Sequence[dict[str, Any]]], list[dict[str, Any]]],
    ) -> list[dict[str, Any]]:
        """In one write transaction: read the thread, append the messages `unseen(thread, messages)` picks.

        For callers that resend a whole conversation each turn (VAPI): two concurrent resends
        of the same turn are serialised by the transaction, so the turn is stored once.
        """

        def txn(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT role, content, extra FROM messages WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
            ).fetchall()
            thread = [
                {"role": r["role"], "content": r["content"], **(json.loads(r["extra"]) if r["extra"] else {})}
                for r in rows
            ]
            new = unseen(thread, messages)
            _insert_messages(conn, conversation_id, new, source=source, model=None, provider=None)
            return new

        return await self.write(txn)

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
        rows = await self.query("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,))
        return bool(rows)


def _insert_messages(
    conn: sqlite3.Connection,
    conversation_id: str,
    messages: Sequence[dict[str, Any]],
    *,
    source: str,
    model: str | None,
    provider: str | None,
) -> int:
    """Append `messages` to a thread inside the caller's transaction; returns the next seq."""
    now = time.time()
    conn.execute(
        "INSERT INTO conversations(id, source, created_at, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at",
        (conversation_id, source, now, now),
    )
    (seq,) = conn.execute(
        "SELECT COALESCE(MAX(seq), -1) + 1 FROM messages WHERE conversation_id = ?", (conversation_id,)
    ).fetchone()
    for message in messages:
        extra = {k: v for k, v in message.items() if k not in ("role", "content")}
        conn.execute(
            "INSERT INTO messages(conversation_id, seq, role, content, extra, model, provider, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                conversation_id,
                seq,
                message["role"],
                message.get("content") or "",
                json.dumps(extra) if extra else None,
                model if message["role"] == "assistant" else None,
                provider if message["role"] == "assistant" else None,
                now,
            ),
        )
        seq += 1
    return seq
