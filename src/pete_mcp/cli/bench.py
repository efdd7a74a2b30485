"""`pete bench`: find the benchmark scripts in bench/ and run one."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

__all__ = ["bench_dir", "run_bench"]


def bench_dir() -> Path:
    """bench/ of the checkout Pete runs from (the current directory first, then the source tree)."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (root / "bench").is_dir():
            return root / "bench"
    raise FileNotFoundError("bench/ not found: run `pete bench` from the repository root.")


def run_bench(name: str | None, *, list_only: bool = False, args: list[str] | None = None) -> int:
    scripts = {p.stem: p for p in sorted(bench_dir().glob("*.py")) if not p.stem.startswith("_")}
    if list_only or not name:
        for stem, path in scripts.items():
            doc = (
                (path.read_text().split('"""')[1].strip().splitlines() or [""])[0] if '"""' in path.read_text() else ""
            )
            print(f"{stem:24} {doc}")
        return 0
    if name not in scripts:
        print(f"unknown benchmark {name!r}; try `pete bench --list`", file=sys.stderr)
        return 2
    sys.argv = [str(scripts[name]), *(args or [])]
    sys.path.insert(0, str(scripts[name].parent))
    runpy.run_path(str(scripts[name]), run_name="__main__")
    return 0
