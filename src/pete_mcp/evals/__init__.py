"""Response-quality evals: tenant-call suites played through Pete's VAPI face, scored with Inspect AI.

Sits above `app` (it plays calls through the composed VAPI face) and below `cli`. The saved
scores live in the core (`pete_mcp.core.eval_scores`), where the faces and the gate read them.
"""

from __future__ import annotations

from .checks import CallRecord, CheckContext, CheckResult, TurnRecord, run_check
from .report import render_failures, render_table
from .runner import Backend, CaseResult, EvalOptions, ModelResult, run_evals, save_results
from .suite import CHECK_PARAMS, Case, CheckSpec, Suite, SuiteError, SuiteTenant, load_suite

__all__ = [
    "CHECK_PARAMS",
    "Backend",
    "CallRecord",
    "Case",
    "CaseResult",
    "CheckContext",
    "CheckResult",
    "CheckSpec",
    "EvalOptions",
    "ModelResult",
    "Suite",
    "SuiteError",
    "SuiteTenant",
    "TurnRecord",
    "load_suite",
    "render_failures",
    "render_table",
    "run_check",
    "run_evals",
    "save_results",
]
