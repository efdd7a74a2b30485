"""Saved eval scores per model, and the quality gate that reads them before a switch or a deploy.

`pete eval` (pete_mcp.evals) writes one row per model and suite per run to `eval_runs`; the
dashboard, the MCP `run_eval` tool and the gate read the latest row per model from here. The
gate is off unless EVAL_MIN_SCORE is set: then a model whose latest saved score is below it is
refused with the checks it failed, and with EVAL_REQUIRE_RUN a model never evaluated is refused too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import QualityGateRefused
from .settings import Settings
from .store import Store

__all__ = ["EvalRunRow", "EvalScoreBook", "QualityGate"]


@dataclass(frozen=True, slots=True)
class EvalRunRow:
    """One model's result on one suite in one saved run."""

    run_id: str
    at: float
    model: str
    suite: str
    suite_version: int
    cases: int
    cases_passed: int
    score: float
    checks: dict[str, float] = field(default_factory=dict)  # check name → pass rate
    failing: list[str] = field(default_factory=list)  # "case-id: check (detail)"
    log_path: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EvalRunRow:
        return cls(
            run_id=str(row["run_id"]),
            at=float(row["at"]),
            model=str(row["model"]),
            suite=str(row["suite"]),
            suite_version=int(row["suite_version"]),
            cases=int(row["cases"]),
            cases_passed=int(row["cases_passed"]),
            score=float(row["score"]),
            checks=json.loads(row["checks"] or "{}"),
            failing=json.loads(row["failing"] or "[]"),
            log_path=str(row["log_path"] or ""),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "at": self.at,
            "model": self.model,
            "suite": self.suite,
            "suite_version": self.suite_version,
            "cases": self.cases,
            "cases_passed": self.cases_passed,
            "score": round(self.score, 4),
            "checks": {k: round(v, 4) for k, v in self.checks.items()},
            "failing": self.failing,
            "log_path": self.log_path,
        }


class EvalScoreBook:
    """Reads and writes `eval_runs` in the core's store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(self, row: EvalRunRow) -> int:
        return await self.store.execute(
            "INSERT INTO eval_runs(run_id, at, model, suite, suite_version, cases, cases_passed, score, checks, "
            "failing, log_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.run_id,
                row.at or time.time(),
                row.model,
                row.suite,
                row.suite_version,
                row.cases,
                row.cases_passed,
                row.score,
                json.dumps(row.checks),
                json.dumps(row.failing),
                row.log_path,
            ),
        )

    async def latest(self, *, suite: str | None = None) -> list[EvalRunRow]:
        """The newest row per (model, suite), models in name order."""
        where, params = ("WHERE suite = ?", (suite,)) if suite else ("", ())
        rows = await self.store.query(
            f"SELECT * FROM eval_runs WHERE id IN (SELECT MAX(id) FROM eval_runs {where} GROUP BY model, suite) "
            "ORDER BY model, suite",
            params,
        )
        return [EvalRunRow.from_row(r) for r in rows]

    async def latest_for(self, model: str, *, suite: str | None = None) -> EvalRunRow | None:
        sql = "SELECT * FROM eval_runs WHERE model = ?" + (" AND suite = ?" if suite else "")
        params: tuple[str, ...] = (model, suite) if suite else (model,)
        rows = await self.store.query(sql + " ORDER BY id DESC LIMIT 1", params)
        return EvalRunRow.from_row(rows[0]) if rows else None


@dataclass(frozen=True, slots=True)
class QualityGate:
    """EVAL_MIN_SCORE as a check: `min_score` None means off."""

    book: EvalScoreBook
    min_score: float | None
    require_run: bool = False
    suite: str | None = None  # None: the newest run of any suite counts

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> QualityGate:
        return cls(
            EvalScoreBook(store), settings.eval_min_score, settings.eval_require_run, settings.eval_gate_suite or None
        )

    def deploy_models(self, settings: Settings, active: str) -> list[str]:
        """The aliases whose scores gate a deploy: EVAL_DEPLOY_MODELS, else the active model."""
        return [m.strip() for m in settings.eval_deploy_models.split(",") if m.strip()] or [active]

    async def check(self, models: Sequence[str], *, action: str) -> None:
        """Let `action` (a switch to, or a deploy serving, `models`) go ahead, or refuse it.

        Raises:
            QualityGateRefused: a model's latest score is below `min_score`, or it has no saved
                run while `require_run` is set. The message names the failing checks.
        """
        if self.min_score is None:
            return
        for model in models:
            row = await self.book.latest_for(model, suite=self.suite)
            if row is None:
                if self.require_run:
                    raise QualityGateRefused(
                        f"{action} refused: {model!r} has no saved eval run and EVAL_REQUIRE_RUN is on.",
                        hint=f"Run `pete eval --model {model}` first.",
                    )
                continue
            if row.score < self.min_score:
                failing = "; ".join(row.failing[:8]) or "no failing checks recorded"
                weak = ", ".join(f"{name} {rate:.0%}" for name, rate in sorted(row.checks.items()) if rate < 1.0)
                raise QualityGateRefused(
                    f"{action} refused: {model!r} scored {row.score:.2f} on {row.suite} v{row.suite_version} "
                    f"(run {row.run_id}), below EVAL_MIN_SCORE {self.min_score:.2f}. "
                    f"Checks below 100%: {weak or 'none'}. Failing: {failing}.",
                    hint="Fix the model or prompt and rerun `pete eval`, or lower EVAL_MIN_SCORE.",
                )
