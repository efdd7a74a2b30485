"""What `pete eval` prints: a side-by-side table per suite, then the failing transcripts."""

from __future__ import annotations

from collections.abc import Sequence

from .runner import ModelResult

__all__ = ["render_failures", "render_table"]


def render_table(results: Sequence[ModelResult]) -> str:
    """Per suite: each model's score, cases passed, and every check's pass rate, side by side."""
    blocks: list[str] = []
    suites = dict.fromkeys((r.suite, r.suite_version) for r in results)
    for suite, version in suites:
        rows = [r for r in results if r.suite == suite and r.suite_version == version]
        models = [r.model for r in rows]
        width = max(34, *(len(n) + 4 for r in rows for n in r.check_rates()))
        col = max(10, *(len(m) + 2 for m in models))
        cases = max(len(r.cases) for r in rows)
        lines = [f"{suite} v{version} ({cases} cases)".ljust(width) + "".join(m.rjust(col) for m in models)]
        lines.append(
            "score (mean share of checks passed)".ljust(width) + "".join(f"{r.score:.3f}".rjust(col) for r in rows)
        )
        lines.append(
            "cases passing every check".ljust(width)
            + "".join(f"{r.cases_passed}/{len(r.cases)}".rjust(col) for r in rows)
        )
        names = sorted({n for r in rows for n in r.check_rates()})
        lines.append("check pass rates:")
        for name in names:
            cells = []
            for r in rows:
                rate = r.check_rates().get(name)
                cells.append(("-" if rate is None else f"{rate:.0%}").rjust(col))
            lines.append(f"  {name}".ljust(width) + "".join(cells))
        lines.append("seconds".ljust(width) + "".join(f"{r.seconds:.0f}".rjust(col) for r in rows))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_failures(results: Sequence[ModelResult], *, limit: int = 5) -> str:
    """Up to `limit` failing cases per model and suite: the transcript and why each check failed."""
    out: list[str] = []
    for r in results:
        failing = [c for c in r.cases if not c.passed]
        if not failing:
            continue
        out.append(f"--- {r.model} on {r.suite}: {len(failing)} failing case(s), first {min(limit, len(failing))}")
        for case in failing[:limit]:
            out.append(f"[{case.case_id}] ({case.category})")
            out.extend(f"    {line}" for line in case.transcript.splitlines())
            for name, ok in case.checks.items():
                if not ok:
                    out.append(f"    FAIL {name}: {case.details.get(name, '')}")
        out.append(f"    log: {r.log_path}")
    return "\n".join(out)
