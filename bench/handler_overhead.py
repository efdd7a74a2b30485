"""Worker handler overhead: tokens/s and time to first chunk through gpu_handler vs the model server directly.

What it measures: one real SmolLM2 model server (llama.cpp), and the same chat turns two ways,
side by side in one run:

- `model server`  streaming `/v1/chat/completions` straight at llama.cpp with httpx;
- `gpu_handler`   the worker's `JobHandler.handle` (what the runpod SDK calls) on a Pete chat
                  job, through the OpenAI-compatible backend, chunking included.

Per request: time to first chunk (request sent → first text), and tokens/s (completion tokens
over request sent → end of reply). Each request gets its own nonce at the start of the
system prompt, so llama.cpp's prompt cache helps neither path; the paths alternate which goes
first, round by round. Targets: ≥ 0.95× the server's tokens/s and ≤ 20 ms added to the first
chunk. The RunPod post per chunk is not part of this (see `runpod_ttfc`).

    uv run pete bench handler_overhead [-- --rounds 10 --max-tokens 64 --url http://127.0.0.1:8781 --no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from gpu_handler import JobHandler, WorkerConfig
from gpu_handler.backends import OpenAICompatibleBackend, build_http_client

from pete_mcp.contract import ChatResult, StreamChunk
from pete_mcp.core.settings import Settings
from pete_mcp.local.model_server import SMOLLM2_ALIAS, ModelServer

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
SECTION = "## Worker handler overhead (`handler_overhead`)"
COMMAND = "uv run pete bench handler_overhead"
QUESTIONS = (
    "When is rent due, and how can I pay it?",
    "My kitchen sink is leaking. What should I do?",
    "Can I get a parking spot for a second car?",
)


@dataclass(frozen=True)
class Sample:
    ttfc_s: float
    tokens: int
    total_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.total_s


def messages(question: str, nonce: int) -> list[dict[str, str]]:
    system = f"[{nonce}] You are Jamie, a property-management assistant. Answer briefly."
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


async def direct(http: httpx.AsyncClient, url: str, msgs: list[dict[str, str]], max_tokens: int) -> Sample:
    body = {
        "model": SMOLLM2_ALIAS,
        "messages": msgs,
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": 7,
        "stream": True,
    }
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    async with http.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices", []):
                if (choice.get("delta") or {}).get("content"):
                    tokens += 1
                    first = first if first is not None else time.perf_counter()
    assert first is not None, "the model server sent no text"
    return Sample(first - started, tokens, time.perf_counter() - started)


async def through_handler(handler: JobHandler, msgs: list[dict[str, str]], max_tokens: int) -> Sample:
    job = {
        "id": "bench",
        "input": {
            "model": SMOLLM2_ALIAS,
            "messages": msgs,
            "options": {"max_tokens": max_tokens, "temperature": 0, "seed": 7},
        },
    }
    started = time.perf_counter()
    first: float | None = None
    result: ChatResult | None = None
    async for output in handler.handle(job):
        if output.get("type") == "chunk":
            StreamChunk.model_validate(output)
            first = first if first is not None else time.perf_counter()
        elif output.get("type") == "result":
            result = ChatResult.model_validate(output)
        else:
            raise RuntimeError(f"the handler failed: {output}")
    assert first is not None and result is not None
    return Sample(first - started, result.usage.completion_tokens, time.perf_counter() - started)


async def measure(url: str, rounds: int, max_tokens: int) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {"model server": [], "gpu_handler": []}
    config = WorkerConfig(model_url=url)
    async with build_http_client(read_timeout_s=120, max_connections=4) as http:
        handler = JobHandler(OpenAICompatibleBackend(http, url), config)
        # Warm up both paths (model resident, model list cached, connections open).
        await direct(http, url, messages(QUESTIONS[0], -1), 8)
        await through_handler(handler, messages(QUESTIONS[0], -2), 8)
        nonce = 0
        for round_no in range(rounds):
            for question in QUESTIONS:
                order = ("model server", "gpu_handler") if round_no % 2 == 0 else ("gpu_handler", "model server")
                for path in order:
                    nonce += 1
                    msgs = messages(question, nonce)
                    sample = (
                        await direct(http, url, msgs, max_tokens)
                        if path == "model server"
                        else await through_handler(handler, msgs, max_tokens)
                    )
                    samples[path].append(sample)
    return samples


def p50(values: list[float]) -> float:
    return statistics.median(values)


def report(samples: dict[str, list[Sample]], *, rounds: int, max_tokens: int) -> str:
    base, worker = samples["model server"], samples["gpu_handler"]
    rows = []
    for name, runs in samples.items():
        rows.append(
            f"| {name} | {len(runs)} | {p50([s.ttfc_s for s in runs]) * 1000:.1f} | "
            f"{p50([s.tokens_per_s for s in runs]):.1f} | {p50([float(s.tokens) for s in runs]):.0f} |"
        )
    # Paired: each handler request against the server request next to it (same question, same
    # round), so load from other processes on a shared machine hits both sides of a pair alike.
    added_ms = p50([(w.ttfc_s - b.ttfc_s) * 1000 for w, b in zip(worker, base, strict=True)])
    ratio = p50([w.tokens_per_s / b.tokens_per_s for w, b in zip(worker, base, strict=True)])
    verdict_ttfc = "meets" if added_ms <= 20 else "misses"
    verdict_tps = "meets" if ratio >= 0.95 else "misses"
    return "\n".join(
        [
            f"{rounds} rounds × {len(QUESTIONS)} questions per path, SmolLM2-135M Q4_1 on llama.cpp "
            f"(2 threads), max_tokens {max_tokens}, greedy.",
            "",
            "| path | requests | p50 time to first chunk (ms) | p50 tokens/s | p50 tokens |",
            "| --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"- added to the first chunk by the handler (median of paired differences): **{added_ms:+.1f} ms** "
            f"(target ≤ 20 ms: {verdict_ttfc})",
            f"- handler tokens/s ÷ server tokens/s (median of paired ratios): **{ratio:.3f}×** "
            f"(target ≥ 0.95×: {verdict_tps})",
        ]
    )


def write_section(body: str, command: str) -> None:
    section = f"{SECTION}\n\nCommand: `{command}` ({run_conditions()}).\n\n{body}\n"
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if SECTION in text:
        start = text.index(SECTION)
        following = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[following + 1 :] if following != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


def run_conditions() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{datetime.date.today().isoformat()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs shared with other work, load average {load:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=10, help="rounds of all questions per path")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--url", default=None, help="use a running llama.cpp server (serving smollm2)")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {DOCS.name}")
    args = parser.parse_args(argv)

    def run(url: str) -> dict[str, list[Sample]]:
        return asyncio.run(measure(url, args.rounds, args.max_tokens))

    if args.url:
        samples = run(args.url.rstrip("/"))
    else:
        settings = Settings()
        with ModelServer(data_dir=settings.data_dir, n_threads=settings.model_server_threads) as server:
            samples = run(server.url)
    body = report(samples, rounds=args.rounds, max_tokens=args.max_tokens)
    print(body)
    if not args.no_write:
        extra = " ".join(argv if argv is not None else sys.argv[1:])
        write_section(body, f"{COMMAND} -- {extra}" if extra else COMMAND)
        print(f"\nwrote {DOCS.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
