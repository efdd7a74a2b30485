"""A gateway process tunes its garbage collector once it is built (`tune_gc_for_serving`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pete_mcp.app
from pete_mcp.app import GC_THRESHOLDS, serve
from pete_mcp.core import Settings


def test_tuning_freezes_what_exists_and_raises_the_young_threshold() -> None:
    """Run in a child: the collector is the whole process's, and the test process keeps its own."""
    script = (
        "import gc, json; from pete_mcp.app import tune_gc_for_serving; "
        "before = gc.get_freeze_count(); tune_gc_for_serving(); "
        "print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold()]))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    before, frozen, thresholds = json.loads(out.stdout)
    assert before == 0 and frozen > 10_000  # the imported modules and their objects
    assert tuple(thresholds) == GC_THRESHOLDS and GC_THRESHOLDS[0] > 700


def test_pete_serve_tunes_the_collector_after_the_app_is_built_and_before_it_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[str] = []
    monkeypatch.setattr(pete_mcp.app, "build_app", lambda core: steps.append("built") or object())
    monkeypatch.setattr(pete_mcp.app, "tune_gc_for_serving", lambda: steps.append("tuned"))
    monkeypatch.setattr(pete_mcp.app.uvicorn, "run", lambda app, **kwargs: steps.append("served"))
    serve(Settings(data_dir=tmp_path), core=object())  # type: ignore[arg-type]
    assert steps == ["built", "tuned", "served"]
