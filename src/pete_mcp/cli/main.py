"""The `pete` command: one click group; each command builds settings → core → face.

Commands import their modules lazily so `pete worker` never loads the gateway and
`pete serve` never loads the runpod SDK.
"""

from __future__ import annotations

import sys

import click

from pete_mcp.core import Settings

from .evals import eval_command, export_dataset_command, modelfile_command, opt_out_command
from .tenants import tenants

__all__ = ["main"]


@click.group()
@click.version_option(package_name="pete")
def main() -> None:
    """Pete: a voice agent's LLM on RunPod serverless, operated over MCP."""


@main.command()
@click.option("--host", default=None, help="Bind address (default from PETE settings: 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Gateway port.")
@click.option(
    "--replicas",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Gateways to run on consecutive ports over one PostgreSQL (needs DATABASE_URL; docs/scaling.md).",
)
def up(host: str | None, port: int | None, replicas: int) -> None:
    """Run the whole system: the gateway, and without RunPod credentials the local stack too."""
    from pete_mcp.local.stack import run_up

    settings = Settings()
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    sys.exit(run_up(settings, replicas=replicas))


@main.command()
@click.option("--host", default=None, help="Bind address.")
@click.option("--port", type=int, default=None, help="Port.")
def serve(host: str | None, port: int | None) -> None:
    """Run the gateway app: MCP at /mcp, VAPI at /vapi/*, dashboard at /."""
    from pete_mcp.app import serve as run_serve

    settings = Settings()
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    run_serve(settings)


@main.command()
def worker() -> None:
    """Run the RunPod worker (what Dockerfile.serverless runs)."""
    from gpu_handler.start import main as start_worker

    start_worker()


@main.command()
@click.option("--port", type=int, default=None, help="Port of the local RunPod endpoint.")
@click.option("--workers", "max_workers", type=int, default=None, help="Most workers to start.")
def localpod(port: int | None, max_workers: int | None) -> None:
    """Run the local RunPod endpoint with real workers (no account needed)."""
    from pete_mcp.local.endpoint import run_localpod

    settings = Settings()
    if port is not None:
        settings.local_endpoint_port = port
    if max_workers is not None:
        settings.local_max_workers = max_workers
    sys.exit(run_localpod(settings))


@main.command()
@click.argument("text")
@click.option("--model", default=None, help="Model alias (default: the active model).")
@click.option("--max-tokens", type=int, default=128, show_default=True)
@click.option("--temperature", type=float, default=None)
def prompt(text: str, model: str | None, max_tokens: int, temperature: float | None) -> None:
    """Send one prompt and stream the answer, with its timings.

    \b
    Goes through the running gateway when one answers at PETE_URL (default
    http://127.0.0.1:PORT), so its dashboard, metrics and traces see it; it signs in
    with MCP_TOKEN, or with the token the gateway writes to DATA_DIR/gateway-cli-token
    (0600, good only for POST /api/prompt). When none answers it builds a core
    in-process and says so. The first line on stderr says which path it took.
    """
    from .prompt import run_prompt

    sys.exit(run_prompt(Settings(), text, model=model, max_tokens=max_tokens, temperature=temperature))


@main.command()
@click.option(
    "--probe",
    is_flag=True,
    help="Also send the active model a one-token prompt: a billed RunPod job that may cold-start a GPU.",
)
def doctor(probe: bool) -> None:
    """Check the system for free (no job is sent); each failed check comes with a fix hint.

    \b
    Reads the running gateway's own checks when one answers at PETE_URL (its live state),
    else checks a core built in-process; the first line on stderr says which.
    """
    from .doctor import run_doctor

    sys.exit(run_doctor(Settings(), probe=probe))


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("name", required=False)
@click.option("--list", "list_only", is_flag=True, help="List the benchmarks.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(name: str | None, list_only: bool, args: tuple[str, ...]) -> None:
    """Run a benchmark from bench/ (see docs/benchmarks.md)."""
    from .bench import run_bench

    sys.exit(run_bench(name, list_only=list_only, args=list(args)))


main.add_command(tenants)


@main.group()
def users() -> None:
    """Operator accounts that sign in on the consent page of Pete's OAuth server."""


@users.command("add")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (one line).")
@click.option("--scope", "scopes", multiple=True, help="A scope this operator may grant (repeat); default: all.")
def users_add(name: str, password_stdin: bool, scopes: tuple[str, ...]) -> None:
    """Create NAME, or replace its password and scopes (pete:read, pete:operate, pete:deploy)."""
    from .users import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    add_user(Settings(), name, password, list(scopes))


@users.command("list")
def users_list() -> None:
    """The operator accounts, the scopes each may grant, and when each was created."""
    from .users import list_users

    list_users(Settings())


@users.command("remove")
@click.argument("name")
def users_remove(name: str) -> None:
    """Delete NAME (tokens already issued stay valid until they expire or are revoked)."""
    from .users import remove_user

    remove_user(Settings(), name)


# The improvement loop (docs/evals.md): `pete eval`, `pete export-dataset`, `pete modelfile`, `pete opt-out`.
main.add_command(eval_command)
main.add_command(export_dataset_command)
main.add_command(modelfile_command)
main.add_command(opt_out_command)


if __name__ == "__main__":
    main()
