"""What a storage engine provides (`Engine`), and alert leadership (`Leadership`).

Two engines implement it: `SQLiteEngine` (one process, WAL) and `PostgresEngine` (replicas on one
server, psycopg 3 with a pool). Everything engine-specific — placeholders, transactions, change
notification across replicas, advisory locks — lives behind this seam, so no caller asks which
engine it has.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from ._sql import Conn, Row
from .migrations import Migration, statements

__all__ = ["AlwaysLeader", "Engine", "Leadership", "WouldBlock", "migrate"]

T = TypeVar("T")

OnPayload = Callable[[str], Awaitable[None]]
OnConnect = Callable[[], Awaitable[None]]


class WouldBlock(Exception):
    """An engine's `*_nowait` call could wait: run its blocking twin (`write`, `read`) off the loop."""


class Leadership(Protocol):
    """One replica at a time holds it (alert evaluation and paging)."""

    async def acquire(self) -> bool:
        """True when this replica leads now: keeps a held lead, else tries to take it."""
        ...

    async def release(self) -> None: ...


class Engine(Protocol):
    name: str  # "sqlite" | "postgres"
    location: str  # where the data lives, any password redacted
    hint: str  # what to check when it cannot be written
    unavailable: tuple[type[BaseException], ...]  # errors meaning "the database cannot be reached"
    errors: tuple[type[BaseException], ...]  # every database error

    def open(self) -> None:
        """Connect and apply pending migrations. Raises ConfigError / StoreError."""
        ...

    def close(self) -> None: ...

    def write(self, fn: Callable[[Conn], T]) -> T:
        """Run `fn` in one write transaction (blocking; the store calls it off the event loop)."""
        ...

    def write_nowait(self, fn: Callable[[Conn], T]) -> T:
        """Run `fn` in one write transaction on the caller's thread, or raise `WouldBlock` before
        doing anything when that could wait (a lock held elsewhere, a network round trip)."""
        ...

    def read(self, sql: str, params: Sequence[Any]) -> list[Row]: ...

    def read_nowait(self, sql: str, params: Sequence[Any]) -> list[Row]:
        """`read` on the caller's thread, or `WouldBlock` when that could wait (as `write_nowait`)."""
        ...

    async def watch(self, channel: str, on_payload: OnPayload, on_connect: OnConnect) -> None:
        """Deliver every `Conn.notify(channel, ...)` of other replicas until cancelled (reconnecting)."""
        ...

    def leadership(self, name: str) -> Leadership: ...


class AlwaysLeader:
    """The leadership of a single process: always held."""

    async def acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def migrate(conn: Conn, engine: str, migrations: Sequence[Migration]) -> list[int]:
    """Apply the migrations `conn`'s database lacks, inside the caller's (locked) transaction.

    Raises:
        RuntimeError: the database was migrated by a newer Pete.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at REAL NOT NULL)"
    )
    done = {int(r["version"]) for r in conn.execute("SELECT version FROM schema_version").fetchall()}
    known = max((m.version for m in migrations), default=0)
    if done and max(done) > known:
        raise RuntimeError(f"the database is at schema version {max(done)}, newer than this Pete knows ({known})")
    applied: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        for statement in statements(migration.for_engine(engine)):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_version(version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, time.time()),
        )
        applied.append(migration.version)
    return applied
