"""`pete tenants`: load the tenant directory from a file, and list it."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import click

from pete_mcp.core import PeteError, Settings, Store, store_from_settings
from pete_mcp.core.tenant_directory import list_tenants, parse_tenant_file, upsert_tenants

__all__ = ["tenants"]


def _store(settings: Settings) -> Store:
    store = store_from_settings(settings)  # the database build_core opens
    store.open()
    return store


@click.group()
def tenants() -> None:
    """The tenant directory Jamie greets callers from."""


@tenants.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-bad", is_flag=True, help="Import the good rows even when some rows are bad.")
def import_(file: Path, skip_bad: bool) -> None:
    """Upsert tenants (matched by phone) from a CSV with a header, or a JSON list.

    Columns: phone, name, unit; optional property, email, notes. A bad row is reported by its
    line (CSV) or item (JSON) number, and then nothing is written unless --skip-bad.
    """
    try:
        parsed = parse_tenant_file(file)
    except PeteError as exc:
        click.echo(f"pete tenants import: {exc}", err=True)
        sys.exit(2)
    where = "item" if file.suffix.lower() == ".json" else "line"
    for line, problem in parsed.errors:
        click.echo(f"{file.name} {where} {line}: {problem}", err=True)
    if parsed.errors and not skip_bad:
        click.echo(f"{len(parsed.errors)} bad row(s); nothing imported (fix them, or pass --skip-bad).", err=True)
        sys.exit(1)

    async def run() -> tuple[int, int]:
        store = _store(Settings())
        try:
            return await upsert_tenants(store, parsed.rows)
        finally:
            store.close()

    added, updated = anyio.run(run)
    skipped = f", {len(parsed.errors)} bad row(s) skipped" if parsed.errors else ""
    click.echo(f"{added} tenant(s) added, {updated} updated{skipped}.")


@tenants.command("list")
def list_() -> None:
    """Print the tenant directory (tab-separated: phone, name, unit, property, email)."""

    async def run() -> None:
        store = _store(Settings())
        try:
            rows = await list_tenants(store)
        finally:
            store.close()
        for row in rows:
            click.echo("\t".join((row.phone, row.name, row.unit, row.property, row.email)))
        if not rows:
            click.echo("No tenants yet: load them with `pete tenants import FILE`.", err=True)

    anyio.run(run)
