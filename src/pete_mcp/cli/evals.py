"""`pete eval`, `pete export-dataset`, `pete modelfile`, `pete opt-out`: the improvement loop, thin.

The work is in `pete_mcp.evals`; these map options onto it and print. Imports are lazy, so
`pete serve` never loads Inspect.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import anyio
import click

from pete_mcp.core import PeteError, Settings

__all__ = ["eval_command", "export_dataset_command", "modelfile_command", "opt_out_command"]

REPO = Path(__file__).resolve().parents[3]
DEFAULT_SUITE = REPO / "evals" / "tenant_calls"


def _fail(command: str, exc: PeteError) -> None:
    click.echo(f"pete {command}: {exc}", err=True)
    sys.exit(2)


@click.command(name="eval")
@click.option("--model", "models", multiple=True, help="Model alias; repeat to compare side by side.")
@click.option(
    "--suite", "suites", multiple=True, type=click.Path(path_type=Path), help="Suite directory or file (repeatable)."
)
@click.option("--heldout", is_flag=True, help="Also run the held-out suite (evals/tenant_calls/heldout).")
@click.option("--case", "cases", multiple=True, help="Run only this case id (repeatable).")
@click.option("--limit", type=int, default=None, help="Run only the first N cases of each suite.")
@click.option("--judge", default=None, help="Model alias that grades the rubrics (any model Pete serves).")
@click.option("--max-tokens", type=int, default=96, show_default=True, help="Longest reply per turn.")
@click.option(
    "--backend",
    type=click.Choice(["auto", "local", "configured"]),
    default="auto",
    show_default=True,
    help="local: the embedded llama.cpp models, in-process; configured: through the running gateway "
    "(PETE_URL) when one answers, else Pete's configured providers in-process; auto: the gateway when one "
    "answers, else configured with RunPod credentials and local without.",
)
@click.option("--failures", type=int, default=3, show_default=True, help="Failing transcripts to print per model.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of the table.")
@click.option("--no-save", is_flag=True, help="Do not save the scores to Pete's store.")
def eval_command(
    models: tuple[str, ...],
    suites: tuple[Path, ...],
    heldout: bool,
    cases: tuple[str, ...],
    limit: int | None,
    judge: str | None,
    max_tokens: int,
    backend: str,
    failures: int,
    as_json: bool,
    no_save: bool,
) -> None:
    """Score models on tenant-call suites, side by side (Inspect AI logs under <data_dir>/evals/logs).

    \b
    Each case is played through an in-process VAPI face over a scratch store; the model calls
    go through the running gateway when one answers (tagged source "eval", so they count in
    its metrics and show on its page), unless --backend local. The first line on stderr
    says which path it took.
    """
    from pete_mcp.evals import EvalOptions, ModelResult, load_suite, render_failures, render_table

    from ._eval_route import run_routed

    settings = Settings()
    try:
        paths = list(suites) or [DEFAULT_SUITE]
        if heldout:
            paths.append(DEFAULT_SUITE / "heldout")
        loaded = [load_suite(p) for p in paths]
        options = EvalOptions(
            models=list(models),  # none: the gateway's active model, else the configured one
            suites=loaded,
            case_ids=list(cases),
            limit=limit,
            judge=judge,
            max_tokens=max_tokens,
            backend=backend,  # type: ignore[arg-type]
            save=not no_save,
        )

        async def progress(result: ModelResult) -> None:
            if not as_json:
                click.echo(f"  {result.model} on {result.suite}: {result.score:.3f} ({result.seconds:.0f} s)", err=True)

        results = anyio.run(run_routed, settings, options, progress)
    except PeteError as exc:
        _fail("eval", exc)
        return
    if as_json:
        rows = [{**r.row("").as_dict(), "seconds": round(r.seconds, 1)} for r in results]
        click.echo(json.dumps({"results": rows}, indent=2))
        return
    click.echo(render_table(results))
    if failures:
        text = render_failures(results, limit=failures)
        if text:
            click.echo("\n" + text)


def _epoch(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD or an ISO time).") from None


@click.command(name="export-dataset")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--since", default=None, help="Calls that started on or after this date (YYYY-MM-DD).")
@click.option("--until", default=None, help="Calls that started before this date.")
@click.option("--outcome", "outcomes", multiple=True, help="Last turn's outcome: answer, transfer, emergency, ...")
@click.option("--eval-pass", is_flag=True, help="Only calls whose replies pass the call-level checks.")
@click.option("--min-turns", type=int, default=1, show_default=True, help="Fewest caller turns.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
def export_dataset_command(
    out: Path,
    since: str | None,
    until: str | None,
    outcomes: tuple[str, ...],
    eval_pass: bool,
    min_turns: int,
    force: bool,
) -> None:
    """Write finished calls as redacted chat fine-tuning JSONL (OpenAI format; Unsloth/Axolotl read it)."""
    from pete_mcp.core import store_from_settings
    from pete_mcp.core.models import JAMIE_SYSTEM_PROMPT
    from pete_mcp.evals.dataset import ExportFilters, export_dataset

    settings = Settings()
    filters = ExportFilters(_epoch(since), _epoch(until), outcomes, eval_pass, min_turns)

    async def run() -> None:
        store = store_from_settings(settings)
        store.open()
        try:
            report = await export_dataset(store, out, system_prompt=JAMIE_SYSTEM_PROMPT, filters=filters, force=force)
        finally:
            store.close()
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(report.skipped.items())) or "none"
        click.echo(f"wrote {report.written} call(s) to {out}; skipped: {skipped}")

    try:
        anyio.run(run)
    except PeteError as exc:
        _fail("export-dataset", exc)


@click.command(name="modelfile")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--model", "alias", default="jamie", show_default=True, help="Registry alias whose prompt to bake in.")
@click.option("--base", default="llama3:latest", show_default=True, help="FROM: the base model.")
@click.option("--adapter", default=None, help="ADAPTER: the fine-tuned LoRA adapter.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
def modelfile_command(out: Path, alias: str, base: str, adapter: str | None, force: bool) -> None:
    """Write an Ollama Modelfile for a registry model from its current system prompt and parameters."""
    from pete_mcp.core import InputError, ModelRegistry
    from pete_mcp.evals.modelfile import ModelfileParams, render_modelfile

    settings = Settings()
    try:
        if out.exists() and not force:
            raise InputError(f"{out} already exists; pass --force to overwrite it.")
        registry = ModelRegistry.from_config(local=True, models_file=settings.models_file)
        text = render_modelfile(registry.get(alias), ModelfileParams(base=base, adapter=adapter))
    except PeteError as exc:
        _fail("modelfile", exc)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}")


@click.command(name="opt-out")
@click.argument("call_id")
@click.option("--undo", is_flag=True, help="Remove the opt-out.")
@click.option("--reason", default="caller asked", show_default=True)
def opt_out_command(call_id: str, undo: bool, reason: str) -> None:
    """Mark a call as never to be exported for training (the caller opted out)."""
    from pete_mcp.core import store_from_settings
    from pete_mcp.evals.dataset import set_opt_out

    settings = Settings()

    async def run() -> None:
        store = store_from_settings(settings)
        store.open()
        try:
            await set_opt_out(store, call_id, opted_out=not undo, reason=reason)
        finally:
            store.close()

    anyio.run(run)
    click.echo(f"{call_id}: {'opt-out removed' if undo else 'opted out of training exports'}")
