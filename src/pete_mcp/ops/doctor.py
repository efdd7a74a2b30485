"""`pete doctor`: the `health` tool's checks in the terminal, each failure with its fix.

Why the same checks: an operator in a terminal and one asking Claude get the same verdicts
(pete_mcp.health). Exit status 1 when any check fails, so scripts and CI can gate on it.
The CLI reads the running gateway's checks (`GET /api/health`, turned back into a report by
`report_from_wire`) when one answers, and runs them here on a fresh core (`checks_in_process`)
only when none does.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import anyio

from pete_mcp.core import Settings
from pete_mcp.gateway import Core, build_core

from .health import Check, HealthReport, run_checks

__all__ = ["checks_in_process", "doctor_report", "exit_status", "format_report", "report_from_wire", "run_doctor"]

MARKS = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}


def run_doctor(settings: Settings, *, probe: bool = False, out: TextIO | None = None) -> int:
    """Build the core from `settings`, run every check, print them.

    Free by default (RunPod's `/health`, the providers' own state); `probe=True` adds the
    one-token prompt, which is a billed job (see `PROBE_COST`). Keep-warm is never started here.
    """
    report = anyio.run(checks_in_process, settings, probe)
    print(format_report(report), file=out or sys.stdout)
    return exit_status(report)


async def checks_in_process(settings: Settings, probe: bool = False) -> HealthReport:
    """Every check on a core built from `settings` (keep-warm never started)."""
    async with build_core(settings.model_copy(update={"keepwarm_hours": ""})) as core:
        return await run_checks(core, probe=probe)


def report_from_wire(data: dict[str, Any]) -> HealthReport:
    """The report behind a gateway's `GET /api/health` answer."""
    checks = [Check(c["name"], c["status"], c["detail"], c.get("hint")) for c in data["checks"]]
    return HealthReport(checks, dict(data.get("figures") or {}))


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
