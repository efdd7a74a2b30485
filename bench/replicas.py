"""Turn TTFT through the VAPI route with the store on PostgreSQL vs SQLite, p50/p99 at c=1 and c=32.

Two gateways, each `pete_mcp.app.build_app` with the VAPI face under uvicorn in its own process,
identical but for the store: one on SQLite (WAL, in a temporary data dir), one on PostgreSQL
(a server this script starts with initdb + pg_ctl on a free loopback port, or `--database-url`).
The model is an in-process stand-in that streams three words at once, so the figures are the
gateway and its store, not a model. Each request is one turn of its own call: the route looks
up the caller (the call board), syncs the resent conversation (one write transaction, which
also gives the turn its context), streams, then stores the reply and the turn's timing.
TTFT = request sent → first frame with non-empty `content`. Drift on a shared machine must hit
both targets alike: at c=1 they alternate request by request (each pair in a random order); at
higher concurrency they run in interleaved rounds (new order each round).

`--round-trips` counts instead the PostgreSQL round trips a turn waits on before its first token:
the gateway reaches the server through a loopback proxy that holds every client→server packet
for 20 ms, then 60 ms; the TTFT grows by the added delay once per round trip, so the
growth divided by 40 ms is the count.

    uv run pete bench replicas
    uv run pete bench replicas -- --requests 300 --rounds 5 --concurrency 1,32
    uv run pete bench replicas -- --round-trips
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from _delay_proxy import delay_proxy, open_links
from _instant import InstantProvider

PROMPT = "You are Jamie. Answer in one short sentence."


# --- the server side (run as `replicas.py --serve ENGINE --port P [--database-url U] --data-dir D`) ----------
def serve(engine: str, port: int, database_url: str, data_dir: Path) -> None:
    import uvicorn
    from pydantic import SecretStr

    from pete_mcp.app import build_app
    from pete_mcp.core import ModelRegistry, ModelSpec, Route, Settings
    from pete_mcp.gateway import build_core
    from pete_vapi import vapi_face

    extra: dict[str, Any] = {"database_url": SecretStr(database_url)} if engine == "postgres" else {}
    settings = Settings(data_dir=data_dir, hedging=False, replica_id=engine, log_level="WARNING", **extra)
    registry = ModelRegistry({"jamie": ModelSpec("jamie", (Route("instant", "m"),), 4096, "Jamie", PROMPT)}, "jamie")
    core = build_core(settings, providers={"instant": InstantProvider()}, registry=registry)
    app = build_app(core, faces=[vapi_face(core)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


# --- PostgreSQL for the run --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if not found:
        raise SystemExit(f"{name} not found: install the Debian package `postgresql`, or pass --database-url")
    return str(found)


def start_postgres(root: Path) -> tuple[str, list[str]]:
    """initdb + pg_ctl start into `root` (as `pete-test` when root); the URL and the stop command."""
    user: list[str] = []
    if os.geteuid() == 0:
        if subprocess.run(["id", "-u", "pete-test"], capture_output=True).returncode:
            subprocess.run(["useradd", "--system", "--no-create-home", "pete-test"], check=True)
        shutil.chown(root, "pete-test")
        user = ["runuser", "-u", "pete-test", "--"]
    data, port = root / "data", free_port()
    subprocess.run(
        [*user, pg_bin("initdb"), "-D", str(data), "-U", "pete", "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
    )
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=200"
    subprocess.run(
        [*user, pg_bin("pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", opts, "-w", "start"],
        check=True,
        capture_output=True,
    )
    return f"postgresql://pete@127.0.0.1:{port}/postgres", [
        *user,
        pg_bin("pg_ctl"),
        "-D",
        str(data),
        "stop",
        "-m",
        "fast",
    ]


# --- the client side ---------------------------------------------------------------------------------------
async def wait_ready(url: str, exited: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if exited():
                raise SystemExit(f"a gateway exited during start ({url})")
            try:
                if (await http.get(f"{url}/healthz", timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise SystemExit(f"{url} did not start")


def body(call_id: str, turns: int = 1) -> dict[str, Any]:
    said: list[dict[str, str]] = [{"role": "system", "content": PROMPT}]
    for i in range(turns):
        if i:
            said.append({"role": "assistant", "content": "Rent is due on the first."})
        said.append({"role": "user", "content": "When is rent due?" if not i else f"And after {i} more?"})
    return {
        "model": "jamie",
        "stream": True,
        "messages": said,
        "call": {"id": call_id, "type": "inboundPhoneCall"},
        "customer": {"number": "+15550000000"},
    }


async def ttft(http: httpx.AsyncClient, url: str, call_id: str = "", turns: int = 1) -> float:
    started = time.perf_counter()
    first: float | None = None
    payload = body(call_id or f"bench-{uuid.uuid4().hex}", turns)
    async with http.stream("POST", f"{url}/vapi/chat/completions", json=payload) as r:
        async for line in r.aiter_lines():  # read to the end: the turn's writes finish inside the request
            if (
                first is None
                and line.startswith("data: {")
                and json.loads(line[6:])["choices"][0]["delta"].get("content")
            ):
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError("no content frame")
    return first


async def batch(http: httpx.AsyncClient, url: str, n: int, concurrency: int) -> list[float]:
    out: list[float] = []
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            out.append(await ttft(http, url))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def measure(targets: dict[str, str], requests: int, rounds: int, levels: list[int]) -> dict[int, dict[str, Any]]:
    results: dict[int, dict[str, list[float]]] = {c: {k: [] for k in targets} for c in levels}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        for url in targets.values():  # warm both: pools, caches
            await batch(http, url, 20, 4)
        for _ in range(rounds):
            for c in levels:
                if c == 1:
                    for _ in range(requests):
                        for name in random.sample(list(targets), len(targets)):
                            results[c][name].append(await ttft(http, targets[name]))
                    continue
                order = list(targets)
                random.shuffle(order)
                for name in order:
                    results[c][name] += await batch(http, targets[name], requests, c)
    return {c: {name: (pct(v, 0.5), pct(v, 0.99), len(v)) for name, v in per.items()} for c, per in results.items()}


# --- round trips: a proxy that delays the gateway's packets to PostgreSQL ---------------------------------
DELAYS_S = (0.020, 0.060)


async def count_round_trips(database_url: str, root: Path, samples: int = 9) -> dict[str, float]:
    """Round trips a turn waits on: the TTFT's growth per second of added client→server delay.

    Median TTFT at two delays; (t_long - t_short) / (long - short) is the count, whatever else
    the turn costs. For a call's first turn and for a later turn of the same call.
    """
    delay = [DELAYS_S[0]]
    parts = urlsplit(database_url)
    server, port = await delay_proxy(int(parts.port or 5432), delay)
    proxied = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))
    gw_port = free_port()
    cmd = [sys.executable, __file__, "--serve", "postgres", "--port", str(gw_port), "--data-dir", str(root / "rt")]
    proc = await asyncio.create_subprocess_exec(
        *cmd, "--database-url", proxied, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{gw_port}"
    medians: dict[str, list[float]] = {"first turn": [], "later turn": []}
    try:
        await wait_ready(url, lambda: proc.returncode is not None, timeout_s=120)
        async with httpx.AsyncClient(timeout=60) as http:
            for _ in range(2):  # warm: pool, prepared statements
                await ttft(http, url)
            for d in DELAYS_S:
                delay[0] = d
                first, later = [], []
                for _ in range(samples):
                    call = f"bench-{uuid.uuid4().hex}"
                    first.append(await ttft(http, url, call, 1))
                    later.append(await ttft(http, url, call, 2))
                medians["first turn"].append(sorted(first)[samples // 2])
                medians["later turn"].append(sorted(later)[samples // 2])
        span = DELAYS_S[1] - DELAYS_S[0]
        return {name: (m[1] - m[0]) / span for name, m in medians.items()}
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)  # its shutdown goes through the proxy in this loop
        server.close()
        if open_links:  # the gateway is gone: its connections through the proxy wind down
            await asyncio.wait(set(open_links), timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help="an existing PostgreSQL (default: start one)")
    parser.add_argument("--requests", type=int, default=200, help="requests per target, level and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument(
        "--round-trips", action="store_true", help="count the PostgreSQL round trips before the first token"
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.database_url, args.data_dir)
        return
    root = Path(tempfile.mkdtemp(prefix="pete-bench-replicas-"))
    root.chmod(0o755)  # the PostgreSQL user (not root) must reach its directory inside
    stop_pg: list[str] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        url = args.database_url
        if not url:
            (root / "pg").mkdir()
            url, stop_pg = start_postgres(root / "pg")
        if args.round_trips:
            trips = asyncio.run(count_round_trips(url, root))
            print("PostgreSQL round trips before the first token (TTFT growth per unit of added latency):")
            for name, value in trips.items():
                print(f"  {name}: {value:.2f}")
            return
        targets: dict[str, str] = {}
        for engine in ("sqlite", "postgres"):
            port = free_port()
            cmd = [
                sys.executable,
                __file__,
                "--serve",
                engine,
                "--port",
                str(port),
                "--data-dir",
                str(root / engine),
                "--database-url",
                url,
            ]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            targets[engine] = f"http://127.0.0.1:{port}"
        for proc, target in zip(procs, targets.values(), strict=True):
            asyncio.run(wait_ready(target, lambda p=proc: p.poll() is not None))
        levels = [int(c) for c in args.concurrency.split(",")]
        figures = asyncio.run(measure(targets, args.requests, args.rounds, levels))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        if stop_pg:
            subprocess.run(stop_pg, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    print(f"VAPI turn TTFT, ms ({args.rounds} rounds x {args.requests} requests per level; interleaved)")
    print(f"{'c':>3}  {'sqlite p50':>10} {'p99':>8}  {'postgres p50':>12} {'p99':>8}  {'pg added p50':>12}")
    for c, per in figures.items():
        s, p = per["sqlite"], per["postgres"]
        print(f"{c:>3}  {s[0]:>10.2f} {s[1]:>8.2f}  {p[0]:>12.2f} {p[1]:>8.2f}  {p[0] - s[0]:>+12.2f}")


if __name__ == "__main__":
    main()
