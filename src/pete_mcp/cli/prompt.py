"""`pete prompt`: one prompt, streamed to the terminal with timings — through the running gateway when
one answers (so the dashboard, metrics and traces see it), else through a core built in-process.

Which path it took is printed first (on stderr). The gateway is `PETE_URL`, by default the local
one (`http://127.0.0.1:PORT`). It authenticates with `MCP_TOKEN` when set, else with the token the
gateway wrote into the data directory for the local CLI (`faces/cli_token.py`).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import anyio

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import JobStarted, PeteError, Settings, TextDelta
from pete_mcp.gateway import ChatTurn, Reply, build_core

from ._gateway import Gateway, error_message, find_gateway, say_path, sse_parts

__all__ = ["run_prompt"]


async def _via_gateway(gateway: Gateway, text: str, model: str | None, options: ChatOptions) -> int:
    body = {"prompt": text, "model": model, "max_tokens": options.max_tokens or 128, "temperature": options.temperature}
    started = time.perf_counter()
    first: float | None = None
    url = gateway.url
    headers = gateway.headers(stream=True)
    async with gateway.http.stream("POST", f"{url}/api/prompt", json=body, headers=headers, timeout=None) as response:
        if response.status_code != 200:
            await response.aread()
            message = error_message(response)
            print(f"error: the gateway at {url} answered {response.status_code}: {message}", file=sys.stderr)
            if response.status_code in (401, 403):
                print(
                    "Set MCP_TOKEN to the gateway's token (or run pete prompt as the user that runs it).",
                    file=sys.stderr,
                )
            return 1
        async for part in sse_parts(response):
            if part["type"] == "job":
                print(f"  job {part['job_id']}", file=sys.stderr)
            elif part["type"] == "delta":
                first = first or time.perf_counter()
                sys.stdout.write(part["text"])
                sys.stdout.flush()
            elif part["type"] == "done":
                _print_done(part, started, first)
            elif part["type"] == "error":
                print(f"\nerror: {part['message']} ({part['code']})", file=sys.stderr)
                return 1
    return 0


def _print_done(part: dict[str, Any], started: float, first: float | None) -> None:
    ttft = f"{(first - started) * 1000:.0f} ms" if first else "n/a"
    tokens = part.get("output_tokens") or 0
    total = part.get("total_s")
    rate = f"{tokens / total:.1f} tok/s" if total else "n/a"
    print(
        f"\n\n[{part['provider']}:{part['model']}] first token {ttft} · total {(time.perf_counter() - started):.2f} s"
        f" · {tokens} tokens · {rate} · finish {part['finish_reason']}"
        + (f" · job {part['job_id']}" if part.get("job_id") else "")
        + (f" · worker {part['worker_id']}" if part.get("worker_id") else ""),
        file=sys.stderr,
    )


async def _in_process(settings: Settings, text: str, model: str | None, options: ChatOptions) -> int:
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


async def _prompt(settings: Settings, text: str, model: str | None, options: ChatOptions) -> int:
    async with find_gateway(settings) as gateway:
        say_path(
            settings,
            gateway,
            through="it shows on its dashboard",
            in_process="running in-process (the dashboard will not see this prompt)",
        )
        if gateway is not None:
            return await _via_gateway(gateway, text, model, options)
    return await _in_process(settings, text, model, options)


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
