"""Emergency layer: recall and false transfers per corpus split, time per turn, hostile turns vs the old regexes.

What it measures: `detect_hazard` over tests/fixtures/emergency/corpus.jsonl (recall per split
and per category, false-transfer rate on look-alikes, p50/p99 time per turn over `--repeat`
passes), then hostile turns ("outlet " x 8000, 1 MB of "a", deep negator repetition, 1 MB of
distinct words) timed once each against the new layer and, with `--old`, against the regex
layer it replaced (bench/_emergency_before.py, the code as it was before issue 11).

    uv run pete bench emergency [-- --repeat 50 --old --no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pete_vapi.emergency import MAX_SCAN_CHARS, detect_hazard, scan_turn

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS = REPO_ROOT / "tests" / "fixtures" / "emergency" / "corpus.jsonl"
DOCS = REPO_ROOT / "docs" / "safety.md"
SECTION = "## Bench (`pete bench emergency`)"
HOSTILE: dict[str, Callable[[], str]] = {
    '"outlet " x 8000 (56 KB)': lambda: "outlet " * 8000,
    '1 MB of "a"': lambda: "a" * 1_000_000,
    '"no not " x 50,000 then "gas leak" (350 KB)': lambda: "no not " * 50_000 + "gas leak",
    "100,000 distinct words (689 KB)": lambda: " ".join(f"w{i}" for i in range(100_000)),
    '"smell the gas bill outlet sparks no water pouring fire drill " x 1000 (62 KB)': lambda: (
        "smell the gas bill outlet sparks no water pouring fire drill " * 1000
    ),
}


def load_corpus() -> list[dict[str, str | None]]:
    return [json.loads(line) for line in CORPUS.open()]


def accuracy(rows: list[dict[str, str | None]]) -> list[str]:
    out = [
        "| split | hazard lines | recalled | recall | look-alikes | false transfers | rate |",
        "| --- |" + " ---: |" * 6,
    ]
    for split in ("tune", "heldout", "all"):
        part = [r for r in rows if split == "all" or r["split"] == split]
        hazards = [r for r in part if r["hazard"]]
        others = [r for r in part if not r["hazard"]]
        hit = sum(1 for r in hazards if (h := detect_hazard(str(r["text"]))) and h.category == r["hazard"])
        false = sum(1 for r in others if detect_hazard(str(r["text"])) is not None)
        out.append(
            f"| {split} | {len(hazards)} | {hit} | {hit / len(hazards):.1%} | {len(others)} | {false} | "
            f"{false / len(others):.1%} |"
        )
    out += ["", "| category | lines | recall |", "| --- | ---: | ---: |"]
    categories = sorted({str(r["hazard"]) for r in rows if r["hazard"]})
    for category in categories:
        lines = [r for r in rows if r["hazard"] == category]
        hit = sum(1 for r in lines if (h := detect_hazard(str(r["text"]))) and h.category == category)
        out.append(f"| {category} | {len(lines)} | {hit / len(lines):.1%} |")
    return out


def per_turn(rows: list[dict[str, str | None]], repeat: int) -> tuple[float, float, float]:
    """p50, p99 and max µs per `detect_hazard` call over `repeat` passes of the corpus."""
    times: list[float] = []
    texts = [str(r["text"]) for r in rows]
    for _ in range(repeat):
        for text in texts:
            started = time.perf_counter()
            detect_hazard(text)
            times.append((time.perf_counter() - started) * 1e6)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99)], times[-1]


def timed(fn: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    fn(text)
    return (time.perf_counter() - started) * 1e3


def hostile(old: Callable[[str], object] | None) -> list[str]:
    out = [
        "| hostile turn | tokens read | matcher steps | new layer ms | old regex layer ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, make in HOSTILE.items():
        text = make()
        scan = scan_turn(text)
        new_ms = timed(detect_hazard, text)
        old_ms = f"{timed(old, text):,.1f}" if old is not None else "not run"
        out.append(f"| {name} | {scan.tokens} | {scan.steps} | {new_ms:.2f} | {old_ms} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="passes over the corpus for the per-turn timings")
    parser.add_argument("--old", action="store_true", help="also time the hostile turns on the old regex layer")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/safety.md alone")
    args = parser.parse_args()
    rows = load_corpus()
    old = None
    if args.old:
        sys.path.insert(0, str(Path(__file__).parent))
        from _emergency_before import detect_hazard as old  # type: ignore[import-not-found]
    started = time.perf_counter()
    p50, p99, worst = per_turn(rows, args.repeat)
    body = [
        SECTION,
        "",
        f"Command: `uv run pete bench emergency -- --repeat {args.repeat}{' --old' if args.old else ''}` "
        f"({time.strftime('%Y-%m-%d')}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs shared with other "
        f"work, load average {os.getloadavg()[0]:.1f}).",
        "",
        *accuracy(rows),
        "",
        f"Time per turn over the corpus ({len(rows)} turns x {args.repeat}): p50 **{p50:.1f} µs**, "
        f"p99 **{p99:.1f} µs**, max {worst:.0f} µs. Scanned slice: at most {MAX_SCAN_CHARS} characters.",
        "",
        *hostile(old),
        "",
        f"Elapsed {time.perf_counter() - started:.1f} s.",
        "",
    ]
    text = "\n".join(body)
    print(text)
    if not args.no_write and DOCS.exists():
        doc = DOCS.read_text()
        start = doc.find(SECTION)
        if start != -1:
            end = doc.find("\n## ", start + len(SECTION))
            DOCS.write_text(doc[:start] + text + ("" if end == -1 else doc[end:]))


if __name__ == "__main__":
    main()
