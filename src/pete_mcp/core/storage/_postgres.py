"""The PostgreSQL engine: several gateway replicas on one server (psycopg 3, psycopg-pool).

Writes run in a pooled connection's transaction, pipelined (a round trip per read, not per
statement; see `PostgresEngine.write`); migrations run under a transaction-scoped
advisory lock, so replicas starting together apply each migration once. `Conn.notify` is
`pg_notify` (delivered at commit) and `watch` LISTENs on a dedicated connection that reconnects.
Leadership is a session advisory lock held on its own connection: when the leader's process
or connection dies the server releases it, and the next replica to ask takes it.
"""

from __future__ import annotations

import contextlib
import logging
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import psycopg
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from ..errors import ConfigError, StoreError
from ._engine import Leadership, OnConnect, OnPayload, WouldBlock, migrate
from ._sql import Row, to_pyformat
from ._url import redact_url
from .migrations import MIGRATIONS, Migration

__all__ = ["AdvisoryLeadership", "PostgresEngine"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MIGRATION_LOCK = zlib.crc32(b"pete:migrations")
OPERATION_WAIT_S = 1.0


def _scrub(text: str, url: str) -> str:
    text = text.replace(url, redact_url(url))  # drivers quote a malformed URL back whole
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text


class _Result:
    """One statement's result. Its statement may still be queued in the pipeline: the first look
    at it sends what is queued and waits for the results (one round trip for all of them)."""

    __slots__ = ("_conn", "_cur")

    def __init__(self, conn: _Conn, cur: psycopg.Cursor[Row]) -> None:
        self._conn, self._cur = conn, cur

    def _ready(self) -> psycopg.Cursor[Row]:
        if self._cur.pgresult is None:
            self._conn.sync()
        return self._cur

    @property
    def rowcount(self) -> int:
        return self._ready().rowcount

    def fetchone(self) -> Row | None:
        cur = self._ready()
        return cur.fetchone() if cur.description else None

    def fetchall(self) -> list[Row]:
        cur = self._ready()
        return cur.fetchall() if cur.description else []


class _Conn:
    """A transaction in pipeline mode: statements are queued, and go to the server together when a
    result is first needed (or at commit), so a transaction costs a round trip per read, not per
    statement."""

    __slots__ = ("_conn", "_pipeline", "answered")

    def __init__(self, conn: psycopg.Connection[Row], pipeline: psycopg.Pipeline) -> None:
        self._conn, self._pipeline = conn, pipeline
        self.answered = False  # the server answered something (a retry is safe only while this is False)

    def sync(self) -> None:
        """Send what is queued and wait for every result."""
        self._pipeline.sync()
        self.answered = True

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Result:
        return _Result(self, self._conn.execute(to_pyformat(sql), params))  # pyright: ignore[reportArgumentType]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(to_pyformat(sql), rows)  # pyright: ignore[reportArgumentType]

    def notify(self, channel: str, payload: str) -> None:
        self._conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))

    def defer_flush(self) -> None:
        self._conn.execute("SET LOCAL synchronous_commit TO OFF")  # queued: no round trip of its own


class PostgresEngine:
    name = "postgres"
    hint = "Check DATABASE_URL and that PostgreSQL is up."
    unavailable: tuple[type[BaseException], ...] = (psycopg.OperationalError,)
    errors: tuple[type[BaseException], ...] = (psycopg.Error,)

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        timeout_s: float = 5.0,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        self.url = url
        self.location = redact_url(url)
        self.min_size, self.max_size, self.timeout_s = min_size, max_size, timeout_s
        self.migrations = migrations
        self._pool: ConnectionPool[psycopg.Connection[Row]] | None = None

    def open(self) -> None:
        try:  # one direct connection first: its error says why, a pool's timeout would not
            with psycopg.connect(self.url, connect_timeout=max(int(self.timeout_s), 1), autocommit=True):
                pass
        except psycopg.Error as exc:
            reason = _scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, self.url)
            raise ConfigError(
                f"cannot reach PostgreSQL at {self.location} (DATABASE_URL): {reason}",
                hint="Check DATABASE_URL and that the server is up, or unset DATABASE_URL to use SQLite.",
            ) from None
        self._pool = pool = ConnectionPool[psycopg.Connection[Row]](
            self.url,
            min_size=self.min_size,
            max_size=self.max_size,
            # Waiting for a connection: short, so an outage turns into spooled writes, not stalled turns.
            timeout=min(self.timeout_s, OPERATION_WAIT_S),
            kwargs={"autocommit": True, "row_factory": dict_row},
            open=False,
            name="pete",
        )
        pool.open(wait=True, timeout=self.timeout_s)
        try:
            self.write(self._migrate)
        except (psycopg.Error, RuntimeError) as exc:
            self.close()
            raise StoreError(f"cannot migrate the database at {self.location}: {_scrub(str(exc), self.url)}") from exc

    def _migrate(self, conn: _Conn) -> list[int]:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
        return migrate(conn, self.name, self.migrations)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _require_pool(self) -> ConnectionPool[psycopg.Connection[Row]]:
        if self._pool is None:
            raise StoreError("the store is not open.")
        return self._pool

    def write(self, fn: Callable[[Any], T]) -> T:
        """One transaction, pipelined: BEGIN and the statements before the first read go in one
        round trip, the rest and COMMIT in the next (a transaction that reads nothing: two).

        BEGIN/COMMIT are sent as statements: psycopg's `transaction()` inside a pipeline syncs on
        entry and exit, which would cost two more round trips. A pooled connection a server
        restart broke fails before the server answers anything: the pool drops it and the
        transaction runs once more on another. COMMIT never goes out in the first batch, so a
        failure there cannot hide a commit. No per-checkout probe: it would cost every
        transaction a round trip."""
        for attempt in (1, 2):
            with self._require_pool().connection() as conn:
                wrapped: _Conn | None = None
                try:
                    with conn.pipeline() as pipeline:
                        wrapped = _Conn(conn, pipeline)
                        conn.execute("BEGIN")
                        result = fn(wrapped)
                        if not wrapped.answered:
                            wrapped.sync()
                        conn.execute("COMMIT")
                    return result
                except psycopg.OperationalError:
                    if attempt == 2 or (wrapped is not None and wrapped.answered) or not conn.closed:
                        raise
                finally:
                    if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                        with contextlib.suppress(psycopg.Error):
                            conn.rollback()
        raise AssertionError("unreachable")  # pragma: no cover

    def write_nowait(self, fn: Callable[[Any], T]) -> T:
        raise WouldBlock  # every transaction is a network round trip

    def read_nowait(self, sql: str, params: Sequence[Any]) -> list[Row]:
        raise WouldBlock  # a network round trip

    def read(self, sql: str, params: Sequence[Any]) -> list[Row]:
        for attempt in (1, 2):
            with self._require_pool().connection() as conn:
                try:
                    cur = conn.execute(to_pyformat(sql), params)  # pyright: ignore[reportArgumentType]
                    return cur.fetchall() if cur.description else []
                except psycopg.OperationalError:
                    if attempt == 2 or not conn.closed:
                        raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def watch(self, channel: str, on_payload: OnPayload, on_connect: OnConnect) -> None:
        pause = 0.2
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=5)
                async with conn:
                    await conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(channel)))
                    pause = 0.2
                    await on_connect()  # catch up on what was missed while not listening
                    async for note in conn.notifies():
                        await on_payload(note.payload)
            except psycopg.Error as exc:
                log.warning("listening on %s failed (%s); reconnecting in %.1f s", channel, type(exc).__name__, pause)
            await anyio.sleep(pause)
            pause = min(pause * 2, 5.0)

    def leadership(self, name: str) -> Leadership:
        return AdvisoryLeadership(self.url, zlib.crc32(f"pete:lead:{name}".encode()))


class AdvisoryLeadership:
    """A session advisory lock on a dedicated connection: held while the connection lives."""

    def __init__(self, url: str, key: int) -> None:
        self.url, self.key = url, key
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.held = False

    async def acquire(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._conn, self.held = None, False
                self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=5)
            if self.held:
                await self._conn.execute("SELECT 1")  # still connected → still ours
                return True
            cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
            row = await cur.fetchone()
            self.held = bool(row and row[0])
        except psycopg.Error as exc:
            log.warning("leadership check failed (%s); not leading", type(exc).__name__)
            await self.release()
        return self.held

    async def release(self) -> None:
        conn, held, self._conn, self.held = self._conn, self.held, None, False
        if conn is not None and not conn.closed:
            with anyio.CancelScope(shield=True):
                if held:  # unlock first: the server frees a closed session's locks only once its backend exits
                    with contextlib.suppress(psycopg.Error):
                        await conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                await conn.close()
