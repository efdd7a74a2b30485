"""TTFT p50/p99 with TTFT hedging on and off, side by side, under RunPod faults (cold starts, 5xx, killed workers).

What it measures: the whole local stack — a real SmolLM2 model server (llama.cpp), the local
RunPod endpoint running real `gpu_handler` workers, and a second OpenAI-compatible server
standing in for OpenRouter (the same llama.cpp server reached directly, or with
`--separate-fallback` a second one). Two cores share the stack, one with hedging on, one
with hedging off (sequential failover on errors only); their clients ask at the same moment,
request by request, so both meet the same faults:

- a 10 s cold start on a share of RunPod jobs (`stall_jobs`: the job waits before any
  worker may take it, like a job that triggers a new worker);
- HTTP 503 on a share of RunPod OpenAI-route calls;
- a worker killed mid-job, twice during the run (its job is requeued by the endpoint).

TTFT is measured at the caller (`core.chat` → first text). "Extra upstream requests" are
requests sent beyond one per reply: hedges plus failovers after errors, as the router counts
them. The hedge delay is the default one: the recent p95 TTFT of the RunPod route, clamped
to [`HEDGE_FLOOR_S`, `HEDGE_CEILING_S`], with the default hedge budget.

    uv run pete bench hedging [-- --requests 100 --stall-share 0.1 --error-share 0.05 --separate-fallback --no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.provider import StreamEvent, TextDelta
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import ChatTurn, Core, Reply, build_core, outbound_http
from pete_mcp.local.localpod import DEFAULT_WORKER_COMMAND, LocalPod, LocalPodConfig
from pete_mcp.local.model_server import SMOLLM2_ALIAS, ModelServer
from pete_mcp.routing.providers.openai_compatible import OpenAICompatibleProvider
from pete_mcp.routing.providers.runpod import RunPodProvider
from pete_mcp.routing.router import RouterStats
from pete_mcp.runpod.client import RunPodClient

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
SECTION = "## TTFT hedging under RunPod faults (`hedging`)"
QUESTIONS = (
    "My kitchen sink is leaking.",
    "When is rent due this month?",
    "Can I have a dog in my unit?",
    "The heating does not work.",
)


@dataclass(frozen=True)
class Sample:
    n: int
    ttft_s: float
    provider: str
    hedges: int
    failovers: int
    denied: int  # hedges the budget refused this request
    at: float  # when it started (time.monotonic)
    instant: int = 0  # hedges sent at once (no idle worker)
    rescues: int = 0  # hedges sent past the rescue point although the budget was spent
    fallback_at: float | None = None  # when the fallback was asked, after the request started
    fallback_ttft: float | None = None  # the fallback's own TTFT, when it gave one


class TimedFallback(OpenAICompatibleProvider):
    """The fallback, noting when its last call started and when its first text came."""

    started: float | None = None
    first_text: float | None = None

    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        self.started, self.first_text = time.monotonic(), None
        async for event in super().stream(model, messages, options):
            if isinstance(event, TextDelta) and self.first_text is None:
                self.first_text = time.monotonic()
            yield event


@dataclass
class Arm:
    name: str
    core: Core
    ttfts: list[float] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    by_provider: dict[str, int] = field(default_factory=dict)
    stats_before: RouterStats = field(default_factory=RouterStats)

    def extra(self) -> tuple[int, int, int, int]:
        """(requests, hedges, failovers, extra upstream requests) during the measured run."""
        now, before = self.core.router.stats, self.stats_before
        return (
            now.requests - before.requests,
            now.hedges - before.hedges,
            now.failovers - before.failovers,
            now.extra_requests - before.extra_requests,
        )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0–100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


async def ask(arm: Arm, n: int, max_tokens: int, *, measure: bool = True) -> None:
    turn = ChatTurn(
        [Message(role="user", content=QUESTIONS[n % len(QUESTIONS)])],
        options=ChatOptions(max_tokens=max_tokens, temperature=0),
        source="bench",
    )
    stats = arm.core.router.stats
    budget = arm.core.router.hedge.budget
    # One request at a time per arm, so the differences below are this request's.
    hedges, failovers, denied = stats.hedges, stats.failovers, budget.denied
    instant, rescues = stats.instant_hedges, stats.rescues
    fallback = arm.core.router.providers["openrouter"]
    assert isinstance(fallback, TimedFallback)
    fallback.started = fallback.first_text = None
    started = time.perf_counter()
    started_at = time.monotonic()
    ttft: float | None = None
    try:
        async for event in arm.core.chat(turn):
            if isinstance(event, TextDelta) and ttft is None:
                ttft = time.perf_counter() - started
            elif isinstance(event, Reply) and measure:
                arm.by_provider[event.provider] = arm.by_provider.get(event.provider, 0) + 1
                seconds = ttft if ttft is not None else time.perf_counter() - started
                arm.ttfts.append(seconds)
                arm.samples.append(
                    Sample(
                        n,
                        seconds,
                        event.provider,
                        stats.hedges - hedges,
                        stats.failovers - failovers,
                        budget.denied - denied,
                        at=started_at,
                        instant=stats.instant_hedges - instant,
                        rescues=stats.rescues - rescues,
                        fallback_at=None if fallback.started is None else fallback.started - started_at,
                        fallback_ttft=None
                        if fallback.first_text is None or fallback.started is None
                        else fallback.first_text - fallback.started,
                    )
                )
    except Exception as exc:
        if measure:
            arm.failed.append(f"{type(exc).__name__}: {exc}")


def build_arm(
    name: str, *, hedging: bool, pod: LocalPod, fallback_url: str, http: httpx.AsyncClient, data: Path
) -> Arm:
    client = RunPodClient(
        http, base_url=pod.url, endpoint_id=pod.endpoint_id, api_key=pod.api_key, timeout_s=120, retries=3
    )
    providers = {
        "runpod": RunPodProvider(client, use_openai_route=True),
        "openrouter": TimedFallback(
            "openrouter", http, base_url=fallback_url + "/v1", timeout_s=120, first_token_timeout_s=120
        ),
    }
    spec = ModelSpec("jamie", (Route("runpod", SMOLLM2_ALIAS), Route("openrouter", SMOLLM2_ALIAS)), 2048)
    settings = Settings.model_validate(
        {"data_dir": data / name, "hedging": hedging, "breaker_failures": 1000, "breaker_error_rate": 1.0}
    )
    return Arm(name, build_core(settings, providers=providers, registry=ModelRegistry({"jamie": spec}, "jamie")))


async def kill_a_busy_worker(pod: LocalPod, kills: list[float]) -> None:
    """Kill the worker of the first job seen running (waits up to 30 s for one)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running = pod.state.board.running()
        if running:
            try:
                pod.kill_worker(job_id=running[0].id)
                kills.append(time.monotonic())
                return
            except Exception:  # the job finished in between
                pass
        await asyncio.sleep(0.01)


async def run(args: argparse.Namespace) -> tuple[str, dict[str, Arm], list[float]]:
    data_dir = Settings.model_validate({}).data_dir
    with tempfile.TemporaryDirectory(prefix="pete-bench-hedging-") as tmp:
        server = ModelServer(data_dir=data_dir, port=0, n_threads=2)
        # OpenRouter's stand-in: by default the same llama.cpp server reached directly (fewer processes on
        # a small machine); `--separate-fallback` gives it its own server process.
        fallback = ModelServer(data_dir=data_dir, port=0, n_threads=2) if args.separate_fallback else server
        await server.astart()
        if fallback is not server:
            await fallback.astart()
        try:
            config = LocalPodConfig(
                port=0,
                worker_command=DEFAULT_WORKER_COMMAND,
                worker_cwd=REPO_ROOT,
                worker_env={"WORKER_MODEL_URL": server.url, "WORKER_READY_TIMEOUT_S": "60"},
                run_dir=Path(tmp) / "pod",
                min_workers=2,
                max_workers=2,
                fault_seed=args.seed,
                ping_interval_ms=1000,
            )
            # The gateway's own outbound client (aiohttp under httpx's API), as `pete serve` builds it.
            async with (
                LocalPod(config) as pod,
                outbound_http(httpx.Timeout(120, connect=5), max_connections=64) as http,
            ):
                await pod.wait_for_workers(2, timeout_s=120)
                arms = {
                    name: build_arm(
                        name, hedging=name == "on", pod=pod, fallback_url=fallback.url, http=http, data=Path(tmp)
                    )
                    for name in ("on", "off")
                }
                async with arms["on"].core, arms["off"].core:
                    for i in range(args.warmup):  # warm both paths; teach the hedge delay a warm TTFT
                        for arm in arms.values():
                            await ask(arm, i, args.max_tokens, measure=False)
                    for arm in arms.values():
                        s = arm.core.router.stats
                        arm.stats_before = RouterStats(**{k: getattr(s, k) for k in RouterStats.__dataclass_fields__})
                    delay = arms["on"].core.router.hedge.delay_s("runpod", SMOLLM2_ALIAS)
                    pod.faults.stall_jobs(args.stall_s, share=args.stall_share)
                    pod.faults.fail_route("openai", 503, share=args.error_share)
                    kills: list[float] = []
                    kill_at = {args.requests // 3, 2 * args.requests // 3}
                    for i in range(args.requests):
                        if i in kill_at:
                            await pod.wait_for_workers(1, timeout_s=120)
                            killer = asyncio.create_task(kill_a_busy_worker(pod, kills))
                            await asyncio.gather(*(ask(arm, i, args.max_tokens) for arm in arms.values()))
                            await killer
                        else:
                            # Both arms ask at once: the same faults, the same model-server load.
                            await asyncio.gather(*(ask(arm, i, args.max_tokens) for arm in arms.values()))
                    pod.faults.clear()
        finally:
            server.stop()
            if fallback is not server:
                fallback.stop()
    return f"{delay:.2f}", arms, kills


def table(arms: dict[str, Arm]) -> list[str]:
    rows = [
        "| hedging | replies | failed | TTFT p50 | TTFT p95 | TTFT p99 | max | hedges (instant / rescue) "
        "| failovers | hedges per request | extra upstream requests | served by |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for arm in arms.values():
        requests, hedges, failovers, extra = arm.extra()
        instant = sum(x.instant for x in arm.samples)
        rescues = sum(x.rescues for x in arm.samples)
        t = arm.ttfts
        served = ", ".join(f"{k} {v}" for k, v in sorted(arm.by_provider.items()))
        rows.append(
            f"| {arm.name} | {len(t)} | {len(arm.failed)} | {percentile(t, 50):.3f} s | {percentile(t, 95):.3f} s "
            f"| {percentile(t, 99):.3f} s | {max(t):.3f} s | {hedges} ({instant} / {rescues}) | {failovers} "
            f"| {hedges / max(1, requests):.0%} | {extra} ({extra / max(1, requests):.0%}) | {served} |"
        )
    return rows


def since_kill(sample: Sample, kills: list[float]) -> str:
    """How long after the latest worker kill a request started (kills restart a worker process)."""
    before = [sample.at - k for k in kills if k <= sample.at + 1.0]
    return f", {min(before):.1f} s after a kill" if before and min(before) < 15 else ""


def fallback_note(sample: Sample) -> str:
    """When the fallback was asked and how long its own first token took."""
    if sample.fallback_at is None:
        return ""
    ttft = "no text" if sample.fallback_ttft is None else f"TTFT {sample.fallback_ttft:.2f} s"
    return f" (fallback asked at {sample.fallback_at:.2f} s, {ttft})"


def report(args: argparse.Namespace, delay: str, arms: dict[str, Arm], kills: list[float], elapsed_s: float) -> str:
    on, off = arms["on"], arms["off"]
    p99_on, p99_off = percentile(on.ttfts, 99), percentile(off.ttfts, 99)
    load = os.getloadavg()[0]
    command = "uv run pete bench hedging" + ("" if not sys.argv[1:] else " -- " + " ".join(sys.argv[1:]))
    lines = [
        SECTION,
        "",
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs shared with other work, "
        f"load average {load:.1f} at the end, {elapsed_s:.0f} s).",
        "",
        "Setup: SmolLM2-135M on llama.cpp (2 threads); the local RunPod endpoint with 2 `gpu_handler` workers "
        "(OpenAI route); fallback `openrouter` = "
        + ("a second llama.cpp server" if args.separate_fallback else "the same llama.cpp server reached directly")
        + f" over `/v1`. `max_tokens` "
        f"{args.max_tokens}; {args.warmup} warm-up replies per arm, then {args.requests} replies per arm, the two "
        f"arms asking at the same moment. Faults: a {args.stall_s:g} s cold start on {args.stall_share:.0%} of "
        f"RunPod jobs, HTTP 503 on {args.error_share:.0%} of RunPod calls, {len(kills)} worker(s) killed mid-job. "
        f"Hedge delay at the start of the measured run: {delay} s (learned p95, clamped to 0.3–1.0 s); hedge "
        "budget 0.2 per request, burst 5; a reply still silent at twice the recent p95 TTFT (unclamped) is "
        "hedged whatever the budget (a rescue). Hedging off still fails over at once on errors and after 10 s "
        "without a first token. "
        "*Hedges per request* = hedges sent / requests; *extra upstream requests* also counts failovers "
        "(every request beyond one per reply, cancelled losers included).",
        "",
        *table(arms),
        "",
        f"p99 TTFT with hedging: **{p99_on:.2f} s** vs **{p99_off:.2f} s** without "
        f"({p99_off / p99_on:.1f}× lower). Target: ≤ 1.5 s with hedging where it is ≥ 10 s without, for ≤ 25 % "
        f"extra requests. p99 is nearest-rank: the {math.ceil(0.99 * args.requests)}th of {args.requests} "
        "sorted values.",
    ]
    slowest = sorted(on.samples, key=lambda x: x.ttft_s, reverse=True)[:6]
    lines += [
        "",
        "Slowest replies with hedging on (TTFT, who answered, hedges/failovers it took, when the fallback was "
        "asked and its own TTFT): "
        + "; ".join(
            f"{x.ttft_s:.2f} s {x.provider} h{x.hedges}/f{x.failovers}{' budget-denied' if x.denied else ''}"
            f"{' instant' if x.instant else ''}{' rescue' if x.rescues else ''}{fallback_note(x)}"
            f"{since_kill(x, kills)}"
            for x in slowest
        )
        + ".",
    ]
    if on.failed or off.failed:
        lines += ["", "Failures: " + "; ".join((on.failed + off.failed)[:5])]
    return "\n".join(lines)


def write_section(body: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + ("" if end == -1 else text[end:])
    DOCS.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="measured replies per arm")
    parser.add_argument("--warmup", type=int, default=25, help="unmeasured replies per arm first")
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--stall-s", type=float, default=10.0, help="cold start added to a share of jobs")
    parser.add_argument("--stall-share", type=float, default=0.1)
    parser.add_argument("--error-share", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--separate-fallback", action="store_true", help="run the fallback as its own llama.cpp")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()
    delay, arms, kills = asyncio.run(run(args))
    body = report(args, delay, arms, kills, time.perf_counter() - started)
    print(body)
    if not args.no_write:
        write_section(body)


if __name__ == "__main__":
    main()
