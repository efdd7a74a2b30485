"""The SQLite engine: one file, WAL, one writer (`BEGIN IMMEDIATE`) and one reader connection.

The embedded default for one process (`pete up`). Each connection sits behind its own lock.
Nothing is shared with other processes, so change notification is a no-op and this process
always leads.

Writes, and reads an index answers (`Store.lookup`), run on the event loop when they cannot
wait (`write_nowait`, `read_nowait`): with WAL and synchronous=NORMAL a commit appends to the WAL
without waiting for the disk, which costs tens of microseconds, while a hop to a worker thread
cost the VAPI route about 0.5 ms of CPU per store call under load (thread wake-ups and the GIL
handed back and forth). Two things could still make a call wait, and both are kept off the loop:
a lock held elsewhere (another thread, or another process on the same file) raises `WouldBlock`,
so the store runs the call in a thread; and the WAL checkpoint (the step that does fsync) runs in
its own thread instead of inside whichever commit crossed SQLite's threshold.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import anyio

from ..errors import StoreError
from ._engine import AlwaysLeader, Leadership, OnConnect, OnPayload, WouldBlock, migrate
from ._sql import Row
from .migrations import MIGRATIONS, Migration

__all__ = ["SQLiteEngine"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _Result:
    __slots__ = ("_cur",)

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._cur = cur

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def fetchone(self) -> Row | None:
        row = self._cur.fetchone()
        return None if row is None else dict(row)

    def fetchall(self) -> list[Row]:
        return [dict(r) for r in self._cur.fetchall()]


class _Conn:
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Result:
        return _Result(self._conn.execute(sql, params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def notify(self, channel: str, payload: str) -> None:
        return None  # one process: nobody else to tell

    def defer_flush(self) -> None:
        return None  # WAL with synchronous=NORMAL: no commit waits for the disk


class SQLiteEngine:
    name = "sqlite"
    hint = "Check DATA_DIR is writable and the disk is not full."
    unavailable: tuple[type[BaseException], ...] = ()  # a local file does not go away mid-call
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(
        self,
        path: Path,
        *,
        migrations: Sequence[Migration] = MIGRATIONS,
        busy_wait_s: float = 10.0,
        checkpoint_every: int = 200,
    ) -> None:
        """`busy_wait_s`: how long a call off the loop waits for another process's lock.
        `checkpoint_every`: commits between WAL checkpoints (SQLite's own default is about 1000
        pages, which is a few hundred of Pete's small transactions)."""
        self.path = path
        self.location = str(path)
        self.migrations = migrations
        self.busy_wait_s = busy_wait_s
        self.checkpoint_every = checkpoint_every
        self.checkpoints = 0  # checkpoints that completed (tests read it)
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._commits = 0
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpoint: Future[None] | None = None

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
            self._writer.execute("PRAGMA wal_autocheckpoint=0")  # `_checkpoint_soon` does it, in its own thread
            self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="pete-sqlite-checkpoint")
            self.write(lambda conn: migrate(conn, self.name, self.migrations))
            self._reader = self._connect()
        except (OSError, sqlite3.Error, RuntimeError) as exc:
            self.close()
            raise StoreError(f"cannot open the store at {self.path}: {exc}", hint="Check PETE data_dir.") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # A statement must never wait inside SQLite (it may be on the event loop):
        # `_busy_retried` waits instead, and only off the loop.
        conn.execute("PRAGMA busy_timeout=0")
        return conn

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.shutdown(wait=True)  # a checkpoint in flight finishes before close returns
            self._checkpointer = None
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()  # the last connection to close checkpoints what is left
        self._writer = self._reader = None

    def write(self, fn: Callable[[Any], T]) -> T:
        with self._write_lock:
            self._begin(self.busy_wait_s)
            return self._run(fn)

    def write_nowait(self, fn: Callable[[Any], T]) -> T:
        if not self._write_lock.acquire(blocking=False):
            raise WouldBlock
        try:
            self._begin(0)
            return self._run(fn)
        finally:
            self._write_lock.release()

    def _begin(self, wait_s: float) -> None:
        """`BEGIN IMMEDIATE`, waiting up to `wait_s` for another process's write lock."""
        if self._writer is None:
            raise StoreError("the store is not open.")
        writer = self._writer
        self._busy_retried(lambda: writer.execute("BEGIN IMMEDIATE"), wait_s)

    @staticmethod
    def _busy_retried(step: Callable[[], T], wait_s: float) -> T:
        """`step()`, tried again while SQLite answers SQLITE_BUSY, for up to `wait_s` (0: raise
        `WouldBlock` at once; the connections' own busy timeout is 0, so they never wait inside)."""
        deadline = time.monotonic() + wait_s
        pause = 0.001
        while True:
            try:
                return step()
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF not in _BUSY:  # extended codes (BUSY_RECOVERY, …) too
                    raise
                if not wait_s:
                    raise WouldBlock from exc
                if time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _run(self, fn: Callable[[Any], T]) -> T:
        """The body of a begun transaction (the write lock held): `fn`, then COMMIT or ROLLBACK."""
        assert self._writer is not None
        try:
            result = fn(_Conn(self._writer))
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self._writer.execute("COMMIT")
        self._commits += 1
        if self._commits >= self.checkpoint_every:
            self._checkpoint_soon()
        return result

    def _checkpoint_soon(self) -> None:
        """Copy the WAL back into the database in the checkpoint thread (PASSIVE: it waits for no
        reader or writer). One at a time; commits meanwhile count towards the next."""
        if self._checkpointer is None or (self._checkpoint is not None and not self._checkpoint.done()):
            return
        self._commits = 0
        self._checkpoint = self._checkpointer.submit(self._run_checkpoint)

    def _run_checkpoint(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                conn.close()
            self.checkpoints += 1
        except sqlite3.Error as exc:  # the next one tries again; nothing is lost meanwhile
            log.warning("SQLite WAL checkpoint failed: %s", exc)

    def read(self, sql: str, params: Sequence[Any]) -> list[Row]:
        with self._read_lock:
            return self._busy_retried(lambda: self._select(sql, params), self.busy_wait_s)

    def read_nowait(self, sql: str, params: Sequence[Any]) -> list[Row]:
        if not self._read_lock.acquire(blocking=False):
            raise WouldBlock
        try:
            return self._busy_retried(lambda: self._select(sql, params), 0)
        finally:
            self._read_lock.release()

    def _select(self, sql: str, params: Sequence[Any]) -> list[Row]:
        if self._reader is None:
            raise StoreError("the store is not open.")
        return [dict(r) for r in self._reader.execute(sql, params).fetchall()]

    async def watch(self, channel: str, on_payload: OnPayload, on_connect: OnConnect) -> None:
        await anyio.sleep_forever()

    def leadership(self, name: str) -> Leadership:
        return AlwaysLeader()
