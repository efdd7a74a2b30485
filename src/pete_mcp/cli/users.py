"""`pete users add/list/remove`: the operator accounts that sign in on the consent page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import anyio
import click

from pete_mcp.core import InputError, Settings, Store
from pete_mcp.faces.auth import Operators

__all__ = ["add_user", "list_users", "remove_user"]

T = TypeVar("T")


def _with_operators(settings: Settings, fn: Callable[[Operators], Awaitable[T]]) -> T:
    async def run() -> T:
        store = Store(settings.data_dir / "pete.sqlite3")
        store.open()
        try:
            return await fn(Operators(store))
        finally:
            store.close()

    return anyio.run(run)


def add_user(settings: Settings, name: str, password: str, scopes: list[str]) -> None:
    try:
        operator = _with_operators(settings, lambda ops: ops.add(name, password, scopes or None))
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"operator {operator.name} may grant: {' '.join(operator.scopes)}")


def list_users(settings: Settings) -> None:
    for operator in _with_operators(settings, lambda ops: ops.list()):
        created = datetime.fromtimestamp(operator.created_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        click.echo(f"{operator.name}\t{' '.join(operator.scopes)}\t{created}")


def remove_user(settings: Settings, name: str) -> None:
    if not _with_operators(settings, lambda ops: ops.remove(name)):
        raise click.ClickException(f"no operator named {name!r}.")
    click.echo(f"removed {name}")
