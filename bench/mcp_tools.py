"""MCP tool-call latency for health and list_models: direct core call vs in-memory vs Streamable HTTP, p50/p99.

What it measures: the cost the MCP layer adds to a cheap tool. `health` runs with
`probe=false` (no model call) and no RunPod provider, so each call is the checks' own work
(SQLite write check, settings) plus the protocol; `list_models` reads the registry and the
metrics snapshot. Baseline: the same core function called directly, in the same run.
In memory: the SDK's `Client(server)` in both protocol eras. HTTP: the Pete app under uvicorn
on a loopback port (same process, another thread), the SDK client over Streamable HTTP with
a bearer token, both eras.

    uv run pete bench mcp_tools [--calls 300] [--warmup 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from pete_mcp.app import build_app
from pete_mcp.core.models import ModelRegistry
from pete_mcp.core.settings import Settings
from pete_mcp.faces.mcp.server import build_mcp_server, mcp_face
from pete_mcp.faces.mcp.views import model_list
from pete_mcp.gateway import Core, build_core
from pete_mcp.ops.health import run_checks

TOKEN = "bench-token"
TOOLS = (("health", {"probe": False}), ("list_models", {}))


def make_core(data_dir: Path) -> Core:
    settings = Settings(data_dir=data_dir, mcp_token=SecretStr(TOKEN))  # pyright: ignore[reportCallIssue]
    return build_core(settings, providers={}, registry=ModelRegistry.from_config(local=True))


async def timed(call: Callable[[], Awaitable[Any]], calls: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await call()
    samples: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class ThreadedServer:
    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/mcp"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


async def measure(calls: int, warmup: int) -> list[tuple[str, str, list[float]]]:
    rows: list[tuple[str, str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with make_core(Path(tmp) / "direct") as core:
            rows.append(
                ("direct core call", "health", await timed(lambda: run_checks(core, probe=False), calls, warmup))
            )
            rows.append(
                ("direct core call", "list_models", await timed(lambda: _async(model_list, core), calls, warmup))
            )
            for era in ("legacy", "auto"):
                async with Client(build_mcp_server(core), mode=era) as client:
                    for tool, args in TOOLS:
                        samples = await timed(lambda t=tool, a=args: client.call_tool(t, a), calls, warmup)
                        rows.append((f"in memory, {era}", tool, samples))
        http_core = make_core(Path(tmp) / "http")
        with ThreadedServer(build_app(http_core, faces=[mcp_face(http_core)])) as url:
            for era in ("legacy", "auto"):
                http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
                async with http, Client(streamable_http_client(url, http_client=http), mode=era) as client:
                    for tool, args in TOOLS:
                        samples = await timed(lambda t=tool, a=args: client.call_tool(t, a), calls, warmup)
                        rows.append((f"HTTP, {era}", tool, samples))
    return rows


async def _async(fn: Callable[[Core], Any], core: Core) -> Any:
    return fn(core)


def report(rows: list[tuple[str, str, list[float]]], calls: int) -> str:
    base = {tool: statistics.median(samples) for path, tool, samples in rows if path == "direct core call"}
    lines = [
        "| path | tool | p50 ms | p99 ms | mean ms | p50 added ms | p50 vs direct | calls |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for path, tool, samples in rows:
        p50 = statistics.median(samples)
        lines.append(
            f"| {path} | {tool} | {p50 * 1e3:.2f} | {percentile(samples, 0.99) * 1e3:.2f} | "
            f"{statistics.fmean(samples) * 1e3:.2f} | {(p50 - base[tool]) * 1e3:.2f} | {p50 / base[tool]:.1f}× | "
            f"{calls} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    rows = anyio.run(measure, args.calls, args.warmup)
    print(report(rows, args.calls))


if __name__ == "__main__":
    main()
