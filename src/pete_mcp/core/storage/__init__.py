"""Storage engines behind the one `Store`: SQLite (embedded, one process) and PostgreSQL (replicas).

`engine_from_settings(settings)` picks: PostgreSQL when DATABASE_URL is set, else SQLite in
`data_dir`. The schema is `MIGRATIONS` (numbered, applied at open under a lock).
"""

from __future__ import annotations

from ._engine import AlwaysLeader, Engine, Leadership, WouldBlock, migrate
from ._factory import engine_from_settings
from ._postgres import AdvisoryLeadership, PostgresEngine
from ._spool import SpoolStats, WriteSpool
from ._sql import Conn, Result, Row, to_pyformat
from ._sqlite import SQLiteEngine
from ._url import redact_url
from .migrations import MIGRATIONS, Migration, postgres_ddl, statements

__all__ = [
    "MIGRATIONS",
    "AdvisoryLeadership",
    "AlwaysLeader",
    "Conn",
    "Engine",
    "Leadership",
    "Migration",
    "PostgresEngine",
    "Result",
    "Row",
    "SQLiteEngine",
    "SpoolStats",
    "WouldBlock",
    "WriteSpool",
    "engine_from_settings",
    "migrate",
    "postgres_ddl",
    "redact_url",
    "statements",
    "to_pyformat",
]
