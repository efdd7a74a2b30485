"""`pete prompt`: one prompt through the configured path, streamed to the terminal with timings."""

from __future__ import annotations

import sys
import time

import anyio

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import JobStarted, PeteError, Settings, TextDelta
from pete_mcp.gateway import ChatTurn, Reply, build_core

__all__ = ["run_prompt"]


async def _prompt(settings: Settings, text: str, model: str | None, options: ChatOptions) -> int:
    started = time.perf_counter()
    first: float | None = None
    async with build_core(settings) as core:
        target = "RunPod" if settings.uses_real_runpod else "the local RunPod endpoint"
        spec = core.models.get(model) if model else core.active
        print(f"→ {spec.alias} ({spec.primary.provider}:{spec.primary.model}) via {target}", file=sys.stderr)
        try:
            async for event in core.chat(
                ChatTurn([Message(role="user", content=text)], model, options=options, source="cli")
            ):
                if isinstance(event, JobStarted):
                    print(f"  job {event.job_id}", file=sys.stderr)
                elif isinstance(event, TextDelta):
                    first = first or time.perf_counter()
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
                elif isinstance(event, Reply):
                    _print_timings(event, started, first)
        except PeteError as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
            if not settings.uses_real_runpod:
                print("Is the local stack running? Start it with `pete up`.", file=sys.stderr)
            return 1
    return 0


def _print_timings(reply: Reply, started: float, first: float | None) -> None:
    done = reply.completion
    ttft = f"{(first - started) * 1000:.0f} ms" if first else "n/a"
    tokens = done.usage.completion_tokens
    rate = f"{tokens / done.total_s:.1f} tok/s" if done.total_s else "n/a"
    print(
        f"\n\n[{reply.provider}:{reply.model}] first token {ttft} · total {(time.perf_counter() - started):.2f} s"
        f" · {tokens} tokens · {rate} · finish {reply.finish_reason}"
        + (f" · job {done.job_id}" if done.job_id else "")
        + (f" · worker {done.worker_id}" if done.worker_id else ""),
        file=sys.stderr,
    )


def run_prompt(
    settings: Settings,
    text: str,
    *,
    model: str | None = None,
    max_tokens: int = 128,
    temperature: float | None = None,
) -> int:
    options = ChatOptions(max_tokens=max_tokens, temperature=temperature)
    return anyio.run(_prompt, settings, text, model, options)
