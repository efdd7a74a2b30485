"""Steady load on one gateway process: throughput, its CPU per request, TTFT p50/p99, and its stalls.

`vapi_overhead` compares targets in short interleaved batches from four client processes; this
holds one target under `--concurrency` calls for `--seconds`, from one light client (aiohttp on
uvloop), and reads the server's own CPU time from /proc, so a change to the gateway's cost per
request shows as a figure rather than inside the noise of six processes on two CPUs. It also
lists the stalls: one-second windows whose TTFT p99 is well above the run's median (a
collector's full pass, a lock), which is where a p99 comes from.

The servers are `vapi_overhead`'s roles: the mock backend, and the target (`vapi`: the gateway
with the VAPI face, built as `pete serve` builds it; `core-http`: the core behind the thinnest
HTTP face). `--root` runs them from another checkout (a `git worktree` of an older commit), for
before/after pairs on the same machine:

    uv run pete bench gateway_steady -- --target vapi --seconds 15
    git worktree add /tmp/before <commit>
    uv run pete bench gateway_steady -- --root /tmp/before --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

REPO_ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench-" + "0123456789abcdef" * 3  # vapi_overhead's bearer key for the gateway
QUESTION = "My kitchen sink is leaking, can someone come today?"
FIRST_CONTENT = re.compile(rb'"content":\s*"[^"]')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


async def wait_ready(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({proc.returncode})")
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in 120 s")


async def first_content(session: aiohttp.ClientSession, url: str) -> float:
    """Seconds from sending one new call's turn to the first frame with content."""
    body = {
        "model": "jamie",
        "stream": True,
        "max_tokens": 64,
        "temperature": 0,
        "messages": [{"role": "user", "content": QUESTION}],
        "call": {"id": f"steady-{uuid.uuid4().hex[:12]}", "type": "inboundPhoneCall"},
        "customer": {"number": "+15551234567"},
    }
    started = time.perf_counter()
    ttft = float("nan")
    async with session.post(url, json=body, headers={"authorization": f"Bearer {KEY}"}) as response:
        response.raise_for_status()
        seen = b""
        async for data in response.content.iter_any():
            if ttft != ttft:
                seen += data
                if FIRST_CONTENT.search(seen):
                    ttft = time.perf_counter() - started
    return ttft


async def measure(
    args: argparse.Namespace, backend: str, base: str, target: str, procs: tuple[subprocess.Popen[bytes], ...]
) -> tuple[list[tuple[float, float]], float, float, float]:
    """(samples as (when it finished, TTFT ms), server CPU s, wall s, start) under steady load."""
    mock, server = procs
    connector = aiohttp.TCPConnector(limit=4 * args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_ready(session, backend + "/v1/models", mock)
        await wait_ready(session, base + ("/healthz" if target == "vapi" else "/"), server)
        url = base + ("/vapi/chat/completions" if target == "vapi" else "/")
        samples: list[tuple[float, float]] = []
        measuring, stopping = False, False

        async def caller() -> None:
            while not stopping:
                ttft = await first_content(session, url)
                if measuring:
                    samples.append((time.perf_counter(), ttft * 1000))

        callers = [asyncio.create_task(caller()) for _ in range(args.concurrency)]
        await asyncio.sleep(args.warmup)
        measuring, cpu_before, began = True, cpu_s(server.pid), time.perf_counter()
        await asyncio.sleep(args.seconds)
        measuring, cpu_after, ended = False, cpu_s(server.pid), time.perf_counter()
        stopping = True
        await asyncio.gather(*callers)
    return samples, cpu_after - cpu_before, ended - began, began


def report(
    args: argparse.Namespace, root: Path, samples: list[tuple[float, float]], cpu: float, wall: float, began: float
) -> str:
    ttfts = [ms for _, ms in samples]
    p50, p99 = pct(ttfts, 50), pct(ttfts, 99)
    windows: dict[int, list[float]] = {}
    for at, ms in samples:
        windows.setdefault(int(at - began), []).append(ms)
    stalls = [(second, max(v)) for second, v in sorted(windows.items()) if max(v) > 2 * p50 and max(v) > p50 + 25]
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    lines = [
        f"{args.target} at c={args.concurrency}, {wall:.0f} s, tree {commit.stdout.strip() or root}: "
        f"{len(ttfts)} requests ({len(ttfts) / wall:.0f}/s), server CPU {1000 * cpu / len(ttfts):.2f} ms per request "
        f"({100 * cpu / wall:.0f} % of a core), TTFT p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"mean {statistics.fmean(ttfts):.1f} ms",
        f"  seconds with a stall (a TTFT over 2 × p50 and p50 + 25 ms): {len(stalls)} of {len(windows)}"
        + (": " + ", ".join(f"{s} s ({ms:.0f} ms)" for s, ms in stalls[:12]) if stalls else ""),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--target", choices=["vapi", "core-http"], default="vapi")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--root", default=str(REPO_ROOT), help="the checkout whose gateway runs (default: this one)")
    args = parser.parse_args()
    import uvloop

    root = Path(args.root).resolve()
    script = str(root / "bench" / "vapi_overhead.py")
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    mock_port, port = free_port(), free_port()
    backend, base = f"http://127.0.0.1:{mock_port}", f"http://127.0.0.1:{port}"
    role = "pete" if args.target == "vapi" else "core-http"
    with tempfile.TemporaryDirectory(prefix="pete-bench-steady-") as data_dir:
        served = ["--port", str(port), "--backend", backend, "--model", "mock-model", "--data-dir", data_dir]
        mock = subprocess.Popen([sys.executable, script, "--role", "mock", "--port", str(mock_port)], env=env)
        server = subprocess.Popen([sys.executable, script, "--role", role, *served], env=env)
        try:
            samples, cpu, wall, began = uvloop.run(measure(args, backend, base, args.target, (mock, server)))
        finally:
            for proc in (server, mock):
                proc.terminate()
                proc.wait(timeout=15)
    print(report(args, root, samples, cpu, wall, began))


if __name__ == "__main__":
    main()
