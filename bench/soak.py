"""Soak: mixed load on a running gateway for minutes, with RunPod faults injected; errors and RSS drift.

What runs, all on this machine:

- a mock OpenAI-compatible model server (`vapi_overhead.mock_app`: deltas after a short first
  delay), so the soak measures the gateway and the RunPod path, not a CPU model;
- the local RunPod endpoint (`LocalPod`) with real `gpu_handler` workers (the unmodified runpod
  SDK loop) talking to the mock;
- `pete serve` in its own process, configured for that endpoint, exactly as `pete up` runs it.

The load, until `--duration` runs out: `--callers` simulated VAPI calls at once, each a call of
three streamed turns on `/vapi/chat/completions` (one new call id per call), and an operator
loop reading `/api/metrics`, `/healthz` and calling MCP `list_models` / `health` over `/mcp`.
Every `--fault-every` seconds the endpoint's fault plan changes (429s and 5xx on a share of
requests, slow streams, a worker killed mid-reply, nothing), round-robin.

An error is a request that did not end well-formed: a non-200 answer, a VAPI stream without
`[DONE]` or with a frame that is not JSON, a failed MCP call, or a timeout. A spoken apology is
not an error (that is the turn budget doing its job). RSS of the gateway process is sampled
every 5 s; the drift compares the median of the last minute with the median of the second
minute (the first is warm-up).

    uv run pete bench soak                       # 10 minutes
    uv run pete bench soak -- --duration 120     # a short run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "bench"))

from vapi_overhead import MODEL, mock_app  # noqa: E402  (bench scripts share the mock model server)

TURNS = [
    "Hi, this is the tenant in unit 4B.",
    "My kitchen sink drips a bit, can someone look at it this week?",
    "Thanks, that's all.",
]


@dataclass
class Tally:
    turns: int = 0
    calls: int = 0
    operator_requests: int = 0
    apologies: int = 0
    errors: list[str] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_in_thread(app: Any, port: int) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()


async def wait_until_up(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


async def one_turn(
    http: httpx.AsyncClient, base: str, call_id: str, history: list[dict[str, str]], tally: Tally
) -> None:
    body = {"model": "jamie", "stream": True, "messages": history, "call": {"id": call_id}, "max_tokens": 48}
    text, done = "", False
    try:
        async with http.stream("POST", f"{base}/vapi/chat/completions", json=body) as response:
            if response.status_code != 200:
                tally.errors.append(f"turn answered {response.status_code}")
                return
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    done = True
                    continue
                frame = json.loads(data)
                for choice in frame.get("choices", []):
                    text += (choice.get("delta") or {}).get("content") or ""
    except (httpx.HTTPError, ValueError) as exc:
        tally.errors.append(f"turn failed: {type(exc).__name__}: {exc}")
        return
    if not done:
        tally.errors.append("turn stream ended without [DONE]")
        return
    tally.turns += 1
    if "trouble answering" in text:
        tally.apologies += 1
    history.append({"role": "assistant", "content": text})


async def caller(base: str, deadline: float, tally: Tally) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5)) as http:
        while time.monotonic() < deadline:
            call_id, history = f"soak-{uuid.uuid4().hex[:10]}", []
            for words in TURNS:
                history.append({"role": "user", "content": words})
                await one_turn(http, base, call_id, history, tally)
            tally.calls += 1


async def operator(base: str, deadline: float, tally: Tally) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5)) as http:
        while time.monotonic() < deadline:
            try:
                for path in ("/api/metrics", "/healthz"):
                    response = await http.get(base + path)
                    if response.status_code != 200:
                        tally.errors.append(f"GET {path} answered {response.status_code}")
                    tally.operator_requests += 1
                async with Client(streamable_http_client(f"{base}/mcp")) as client:
                    for name, args in (("list_models", {}), ("health", {"probe": False})):
                        result = await client.call_tool(name, args)
                        if result.is_error:
                            tally.errors.append(f"MCP {name} failed: {result.content}")
                        tally.operator_requests += 1
            except Exception as exc:  # the soak counts every failure; it must not stop
                tally.errors.append(f"operator: {type(exc).__name__}: {exc}")
            await asyncio.sleep(2)


async def fault_plan(pod: Any, deadline: float, every_s: float, tally: Tally) -> None:
    plans = [
        ("429 on 10% of OpenAI-route jobs", lambda f: f.fail_route("openai", 429, share=0.1)),
        ("503 on 10% of OpenAI-route jobs", lambda f: f.fail_route("openai", 503, share=0.1)),
        ("slow streams (+50 ms per chunk)", lambda f: f.slow_stream(0.05)),
        ("a worker killed mid-reply", None),
        ("no fault", lambda f: None),
    ]
    rng = random.Random(7)
    index = 0
    while time.monotonic() < deadline:
        name, arm = plans[index % len(plans)]
        pod.faults.clear()
        if arm is None:
            busy = [job.id for job in pod.state.board.running()]
            try:
                if not busy:
                    raise LookupError("no job running")
                pod.kill_worker(job_id=rng.choice(busy))
            except LookupError as exc:  # nothing to kill right now: say so and carry on
                name += f" (skipped: {exc})"
        else:
            arm(pod.faults)
        tally.faults.append(name)
        index += 1
        await asyncio.sleep(every_s)
    pod.faults.clear()


async def sample_rss(pid: int, deadline: float, tally: Tally) -> None:
    process = psutil.Process(pid)
    while time.monotonic() < deadline:
        tally.rss.append((time.monotonic(), process.memory_info().rss))
        await asyncio.sleep(5)


def rss_drift(samples: list[tuple[float, int]]) -> tuple[float, float, float]:
    """(second-minute median MiB, last-minute median MiB, drift %) — the first minute is warm-up."""
    start = samples[0][0]
    second = [rss for at, rss in samples if 60 <= at - start < 120] or [rss for _, rss in samples[: len(samples) // 2]]
    end = samples[-1][0]
    last = [rss for at, rss in samples if end - at < 60]
    a, b = statistics.median(second) / 2**20, statistics.median(last) / 2**20
    return a, b, (b - a) / a * 100


async def main(args: argparse.Namespace) -> int:
    from pete_mcp.local.localpod import DEFAULT_WORKER_COMMAND, LocalPod, LocalPodConfig

    os.environ.setdefault("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "true")
    mock_port, gateway_port = free_port(), free_port()
    serve_in_thread(mock_app(first_ms=40, deltas=24, gap_ms=8), mock_port)
    await wait_until_up(f"http://127.0.0.1:{mock_port}/v1/models", 20)
    run_dir = Path(tempfile.mkdtemp(prefix="pete-soak-"))
    config = LocalPodConfig(
        port=free_port(),
        api_key="soak-key",
        worker_command=DEFAULT_WORKER_COMMAND,
        worker_cwd=REPO_ROOT,
        worker_env={"WORKER_BACKEND": "openai", "WORKER_MODEL_URL": f"http://127.0.0.1:{mock_port}"},
        run_dir=run_dir / "pod",
        min_workers=2,
        max_workers=3,
    )
    # Jamie's prompt and tools, served by the mock through the RunPod path.
    from pete_mcp.core.models import JAMIE_SYSTEM_PROMPT

    models_file = run_dir / "models.json"
    jamie = {"alias": "jamie", "chain": [{"provider": "runpod", "model": MODEL}], "context_window": 4096}
    models_file.write_text(
        json.dumps([{**jamie, "description": "Jamie on the mock", "system_prompt": JAMIE_SYSTEM_PROMPT}])
    )
    tally = Tally()
    async with LocalPod(config) as pod:
        await pod.wait_for_workers(2, timeout_s=120)
        env = {
            **os.environ,
            "PORT": str(gateway_port),
            "DATA_DIR": str(run_dir / "pete"),
            "LOCAL_ENDPOINT_PORT": str(urlsplit(pod.url).port),
            "LOCAL_API_KEY": "soak-key",
            "LOCAL_ENDPOINT_ID": pod.endpoint_id,
            "LOG_LEVEL": "WARNING",
            "MODELS_FILE": str(models_file),
            "ACTIVE_MODEL": "jamie",
        }
        env.pop("RUNPOD_API_KEY", None)
        command = [sys.executable, "-m", "pete_mcp.cli", "serve"]
        gateway = subprocess.Popen(command, env=env, cwd=REPO_ROOT)  # noqa: ASYNC220 (started once, not awaited)
        base = f"http://127.0.0.1:{gateway_port}"
        try:
            await wait_until_up(base + "/healthz", 60)
            deadline = time.monotonic() + args.duration
            started = time.monotonic()
            await asyncio.gather(
                *(caller(base, deadline, tally) for _ in range(args.callers)),
                operator(base, deadline, tally),
                fault_plan(pod, deadline, args.fault_every, tally),
                sample_rss(gateway.pid, deadline, tally),
            )
            elapsed = time.monotonic() - started
        finally:
            gateway.send_signal(signal.SIGTERM)
            try:
                gateway.wait(20)
            except subprocess.TimeoutExpired:
                gateway.kill()
    second, last, drift = rss_drift(tally.rss)
    print(
        f"duration {elapsed:.0f} s, {args.callers} callers: {tally.calls} calls, {tally.turns} turns "
        f"({tally.apologies} apologies), {tally.operator_requests} operator requests"
    )
    print(f"errors: {len(tally.errors)}")
    for error in sorted(set(tally.errors))[:20]:
        print(f"  {tally.errors.count(error)} × {error}")
    print(f"gateway RSS: {second:.1f} MiB (second minute) → {last:.1f} MiB (last minute), drift {drift:+.1f} %")
    print(f"faults cycled: {', '.join(dict.fromkeys(tally.faults))}")
    ok = not tally.errors and abs(drift) <= 10
    print("PASS" if ok else "FAIL", "(target: 0 errors, RSS within ±10 %)")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--callers", type=int, default=6, help="simultaneous simulated calls")
    parser.add_argument("--fault-every", type=float, default=30.0, help="seconds between fault-plan changes")
    sys.exit(asyncio.run(main(parser.parse_args())))
