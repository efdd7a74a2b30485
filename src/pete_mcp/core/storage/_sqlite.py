"""The SQLite engine: one file, WAL, one writer (`BEGIN IMMEDIATE`) and one reader connection.

The embedded default for one process (`pete up`). Both connections are used off the event loop,
each behind its own lock. Nothing is shared with other processes, so change notification is a
no-op and this process always leads.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio

from ..errors import StoreError
from ._engine import AlwaysLeader, Leadership, OnConnect, OnPayload, migrate
from ._sql import Row
from .migrations import MIGRATIONS, Migration

__all__ = ["SQLiteEngine"]

T = TypeVar("T")


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

    def __init__(self, path: Path, *, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.path = path
        self.location = str(path)
        self.migrations = migrations
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
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
        return conn

    def close(self) -> None:
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = None

    def write(self, fn: Callable[[Any], T]) -> T:
        if self._writer is None:
            raise StoreError("the store is not open.")
        with self._write_lock:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                result = fn(_Conn(self._writer))
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")
            return result

    def read(self, sql: str, params: Sequence[Any]) -> list[Row]:
        if self._reader is None:
            raise StoreError("the store is not open.")
        with self._read_lock:
            return [dict(r) for r in self._reader.execute(sql, params).fetchall()]

    async def watch(self, channel: str, on_payload: OnPayload, on_connect: OnConnect) -> None:
        await anyio.sleep_forever()

    def leadership(self, name: str) -> Leadership:
        return AlwaysLeader()
