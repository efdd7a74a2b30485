"""The one connection shape every caller writes against, whichever engine is underneath.

Callers write portable SQL with `?` placeholders (`INSERT ... ON CONFLICT`, `RETURNING`, no
engine-only functions) against `Conn`; each engine adapts it: SQLite runs it as is, PostgreSQL
gets `%s` placeholders (and a literal `%` doubled). Rows are plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Protocol

__all__ = ["Conn", "Result", "Row", "to_pyformat"]

Row = dict[str, Any]


class Result(Protocol):
    """What one statement gives back: its rows (dicts) and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Row | None: ...

    def fetchall(self) -> list[Row]: ...


class Conn(Protocol):
    """A connection inside one transaction (`Store.write`'s argument)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def notify(self, channel: str, payload: str) -> None:
        """Tell other replicas `payload` on `channel` when this transaction commits (no-op on one process)."""
        ...

    def defer_flush(self) -> None:
        """Let this transaction's commit return before its log reaches the disk.

        For writes whose content is sent again anyway (a resent transcript): a crash of the
        database server in the next fraction of a second may lose the transaction (whole, never
        half), and the next ordinary commit on the server makes it durable. Visibility, locks and
        order are unchanged. PostgreSQL: `synchronous_commit = off` for this transaction only;
        SQLite: already so for every commit (WAL with synchronous=NORMAL).
        """
        ...


@lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """`?` placeholders → `%s` (psycopg), leaving quoted text alone and doubling literal `%`."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)
