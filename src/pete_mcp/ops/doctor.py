"""`pete doctor`: the `health` tool's checks in the terminal, each failure with its fix.

Why the same checks: an operator in a terminal and one asking Claude get the same verdicts
(pete_mcp.health). Exit status 1 when any check fails, so scripts and CI can gate on it.
"""

from __future__ import annotations

import sys
from typing import TextIO

import anyio

from pete_mcp.core import Settings
from pete_mcp.gateway import Core, build_core

from .health import HealthReport, run_checks

__all__ = ["doctor_report", "exit_status", "format_report", "run_doctor"]

MARKS = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}


def run_doctor(settings: Settings, *, probe: bool = False, out: TextIO | None = None) -> int:
    """Build the core from `settings`, run every check, print them.

    Free by default (RunPod's `/health`, the providers' own state); `probe=True` adds the
    one-token prompt, which is a billed job (see `PROBE_COST`). Keep-warm is never started here.
    """
    report = anyio.run(_checks_for, settings.model_copy(update={"keepwarm_hours": ""}), probe)
    print(format_report(report), file=out or sys.stdout)
    return exit_status(report)


async def _checks_for(settings: Settings, probe: bool) -> HealthReport:
    async with build_core(settings) as core:
        return await run_checks(core, probe=probe)


async def doctor_report(core: Core, *, probe: bool = False) -> tuple[str, int]:
    """The printed report and exit status for an open core."""
    report = await run_checks(core, probe=probe)
    return format_report(report), exit_status(report)


def exit_status(report: HealthReport) -> int:
    return 1 if report.status == "failing" else 0


def format_report(report: HealthReport) -> str:
    width = max(len(c.name) for c in report.checks)
    lines = [f"Pete doctor: {report.status} ({report.summary})", ""]
    for check in report.checks:
        lines.append(f"  {MARKS[check.status]} {check.name:<{width}}  {check.detail}")
        if check.hint and check.status in ("warn", "fail"):
            lines.append(f"    {'':<{width}}  fix: {check.hint}")
    if report.figures:
        lines += ["", "  " + "  ".join(f"{k}={v}" for k, v in report.figures.items())]
    return "\n".join(lines)
