"""Hostile input on every face: 5xx answers and cut streams over N generated cases per face.

What it runs: tests/test_hostile_input.py (hypothesis: the VAPI Custom LLM route, the VAPI
webhook, the dashboard's actions, MCP over /mcp, the local RunPod endpoint's /run) with
`PETE_FUZZ_EXAMPLES=N`, and tests/test_openapi.py (schemathesis over /openapi.json, N/5
per operation). Each face's tally (cases, 5xx, cut streams, statuses) is printed as a table.
`--seed` makes hypothesis draw fresh cases (default: derandomized, so a run is repeatable).

    uv run pete bench fuzz [-- --examples 10000 --seed 1 -k dashboard]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(prog="pete bench fuzz", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="generated cases per face (default 10000)")
    parser.add_argument("--seed", type=str, default=None, help="draw fresh cases (hypothesis seed)")
    parser.add_argument("-k", dest="select", default=None, help="only the tests pytest's -k selects")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "fuzz.jsonl"
        env = {**os.environ, "PETE_FUZZ_EXAMPLES": str(args.examples), "PETE_FUZZ_REPORT": str(report)}
        if args.seed is not None:
            env["PETE_FUZZ_SEED"] = args.seed
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["tests/test_hostile_input.py", "tests/test_openapi.py"]
        if args.seed is not None:
            command.append(f"--hypothesis-seed={args.seed}")
        if args.select:
            command += ["-k", args.select]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, check=False)
        took = time.perf_counter() - started
        rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    print(f"\n{'face':<18} {'cases':>7} {'5xx':>5} {'cut':>5}  statuses")
    for row in rows:
        statuses = ", ".join(f"{k}: {v}" for k, v in row["statuses"].items())
        print(f"{row['face']:<18} {row['cases']:>7} {row['server_errors']:>5} {row['cut_streams']:>5}  {statuses}")
    print(f"\npytest exit {result.returncode}; {took:.0f} s for {args.examples} examples per face")
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
