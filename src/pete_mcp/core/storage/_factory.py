"""Which engine the settings ask for: PostgreSQL when DATABASE_URL is set, else SQLite in data_dir."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._engine import Engine
from ._sqlite import SQLiteEngine

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["engine_from_settings"]


def engine_from_settings(settings: Settings) -> Engine:
    if settings.database_url is not None:
        from ._postgres import PostgresEngine

        return PostgresEngine(
            settings.database_url.get_secret_value(),
            min_size=settings.database_pool_min,
            max_size=settings.database_pool_max,
            timeout_s=settings.database_timeout_s,
        )
    return SQLiteEngine(settings.data_dir / "pete.sqlite3")
