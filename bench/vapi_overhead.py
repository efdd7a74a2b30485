"""TTFT the VAPI Custom LLM route adds over calling the core directly, beside LiteLLM's proxy, at c=1 and c=32.

What runs, all on this machine, each in its own process:

- **mock**: a tiny OpenAI-compatible server streaming `--deltas` content deltas (the first
  after `--first-ms`, then one every `--gap-ms`), so the figures are overhead, not a model. Its
  deltas are the words of a reply Jamie might give, punctuation and all (`REPLY`), so a face that
  frames text by sentence (the VAPI route's `chunk-plan`) sends the frames a real reply gets;
- **pete**: `pete_mcp.app.build_app` with the VAPI face under uvicorn (one worker), its core's only provider an
  `OpenAICompatibleProvider` pointed at the mock;
- **litellm**: LiteLLM's proxy (`litellm --num_workers 1`, no database, no callbacks, no
  retries), configured in front of the same mock (gateway-and-latency.md §2.7).

Five targets are measured, interleaved in rounds (in a new order each round) so drift in a
shared machine hits all of them alike: **direct** (the mock itself), **core** (`core.chat`
called directly in its own process, with the same provider and store work as the route),
**core-http** (the same core behind the thinnest HTTP face, `core_http_app`), **vapi**
(`POST /vapi/chat/completions` on pete, one new call id per request, with a bearer key) and
**litellm** (with its master key). HTTP load comes from `--clients` load-generator processes
sharing the concurrency, each with the lightest client Python has (`--load-client raw`:
kept-alive sockets and httptools, `_raw_http.py`), so the load takes as little as it can of the
CPUs the servers under test share (a heavier client's work lands on every HTTP target's TTFT and
on none of the core's; `--load-client httpx` measures with httpx's own transport).
TTFT = request sent → first frame carrying non-empty `content`, measured where the request is
made. "VAPI added" is vapi − core (the HTTP hop and the route); "route's own work" is
vapi − core-http (auth, parsing, conversation sync, the emergency check, framing, middleware);
"Pete added" is vapi − direct (core included), compared with "LiteLLM added", litellm − direct.
`--real-model` repeats c=1 against the local llama.cpp SmolLM2 server instead of the mock.

The concurrency levels are saturation tests: each of c callers sends its next request the moment
the last stream ends (on two shared CPUs, ~200 turns a second), the callers starting at random
moments within one reply (all at once, each one's first turn would wait behind all the others'
start-up work: a burst, not the level). `--calls 32` adds what 32 live
phone calls look like: each caller pauses a random 0–2 × `--pace-ms` before every turn (a caller
listens to Jamie and speaks in between; real turns are seconds apart, so the default 1 s is
denser than life), so turns arrive at random moments rather than back to back.

    uv sync --group bench   # LiteLLM is in its own dependency group
    LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_OFFLINE_MODE=true uv run pete bench vapi_overhead
    uv run pete bench vapi_overhead -- --requests 200 --concurrency 1,32 --real-model --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from _raw_http import RawClient, RawHTTPError

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
SECTION = "## VAPI route overhead vs LiteLLM (`vapi_overhead`)"
MODEL = "mock-model"
# The mock's deltas, a word each (in a loop for more than 24): three places VAPI's chunkPlan can
# cut in the first 20 words, as in a spoken reply.
REPLY = (  # noqa: SIM905 (a sentence reads better than 24 quoted words)
    "I'm sorry about the leak. Which unit are you in, and is water still coming out? "
    "I can have a plumber there this afternoon."
).split()
QUESTION = "My kitchen sink is leaking, can someone come today?"
# Both gateways check a credential, as in production (LiteLLM refuses to start without one).
SETTLE_S = 0.5
KEY = "sk-bench-" + "0123456789abcdef" * 3
# The servers here keep an idle connection 30 s (uvicorn's default is 5 s, the same as httpx's
# client-side expiry, so a client sometimes sent a request just as the server closed the
# connection: a failed request, ReadError, of whichever target it was).
KEEP_ALIVE_S = 30
# The gateways' outbound client: Pete's own (aiohttp underneath), or `--outbound httpx` for the
# transport it replaced; the processes the bench starts inherit the choice through this variable.
OUTBOUND_ENV = "PETE_BENCH_OUTBOUND"
# A caller pauses this long after a failed request, so a target that fails at once is not sent
# requests in a tight loop that takes the CPUs from the others.
FAILED_PAUSE_S = 0.1
# `--load-client`, as the report names it.
LOAD_CLIENTS = {"raw": "raw sockets read with httptools", "aiohttp": "httpx over aiohttp", "httpx": "httpx"}


# --- bare ASGI servers: the mock backend and the core over HTTP ---------------------------------
async def serve_lifespan(receive: Any, send: Any, within: Any = None) -> None:
    """Answer ASGI lifespan messages until shutdown, inside `within` (an async context manager).
    A core's process ends start-up as `pete serve`'s does (`freeze_startup_heap`), so every arm
    that runs the core pays the garbage collector alike."""
    async with within or contextlib.nullcontext():
        if within is not None:
            from pete_mcp.app import freeze_startup_heap

            freeze_startup_heap()
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


# --- the mock backend (runs as `--role mock`) ------------------------------------------------
def mock_app(first_ms: float, deltas: int, gap_ms: float) -> Any:
    """A bare ASGI OpenAI-compatible server: `/v1/chat/completions` (streamed) and `/v1/models`."""

    def frame(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        await read_body(receive)
        if scope["path"].endswith("/models"):
            payload = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": payload})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send(
            {"type": "http.response.body", "body": frame({"role": "assistant", "content": ""}), "more_body": True}
        )
        await asyncio.sleep(first_ms / 1000)
        for i in range(deltas):
            if i:
                await asyncio.sleep(gap_ms / 1000)
            await send(
                {
                    "type": "http.response.body",
                    "body": frame({"content": " " + REPLY[i % len(REPLY)]}),
                    "more_body": True,
                }
            )
        tail = frame({}, "stop") + b"data: [DONE]\n\n"
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    return app


def serve_on(app: Any, port: int, **options: Any) -> None:
    """Serve `app` on loopback with uvicorn, as every server of this benchmark is served."""
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        **options,
    )


def serve_mock(port: int, first_ms: float, deltas: int, gap_ms: float) -> None:

    serve_on(mock_app(first_ms, deltas, gap_ms), port)


# --- the gateway under test (runs as `--role pete`) -------------------------------------------
def jamie_on(provider: str, model: str) -> Any:
    from pete_mcp.core.models import ModelRegistry, ModelSpec, Route

    spec = ModelSpec("jamie", (Route(provider, model),), 2048, "Jamie", "You are Jamie. Answer briefly.")
    return ModelRegistry({"jamie": spec}, "jamie")


def build_core_on(backend: str, model: str, data_dir: Path) -> Any:
    """The core every gateway process serves; it closes its own HTTP client."""
    from pete_mcp.core.settings import Settings
    from pete_mcp.gateway import build_core, outbound_http
    from pete_mcp.routing.providers.openai_compatible import OpenAICompatibleProvider

    timeout = httpx.Timeout(120, connect=5)
    if os.environ.get(OUTBOUND_ENV) == "httpx":  # `--outbound httpx`: httpx's own transport, as before aiohttp
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        http = httpx.AsyncClient(timeout=timeout, limits=limits)
    else:
        http = outbound_http(timeout)

    settings = Settings.model_validate(
        {"data_dir": data_dir, "hedging": False, "log_level": "WARNING", "vapi_auth": "bearer", "vapi_secret": KEY}
    )
    provider = OpenAICompatibleProvider("backend", http, base_url=backend + "/v1")
    return build_core(settings, http=http, providers={"backend": provider}, registry=jamie_on("backend", model))


def serve_pete(port: int, backend: str, model: str, data_dir: Path) -> None:

    from pete_mcp.app import build_app
    from pete_vapi import vapi_face

    logging.basicConfig(level=logging.WARNING)
    core = build_core_on(backend, model, data_dir)
    app = build_app(core, faces=[vapi_face(core)], freeze_heap=True)  # as `pete serve` builds it
    serve_on(app, port, lifespan="on")


def core_http_app(core: Any, max_tokens: int) -> Any:
    """`core.chat` behind the thinnest HTTP face: the body's messages in, each delta out as one SSE
    frame. No auth, no conversation sync, no emergency check, no middleware: what any HTTP face
    over the core costs (parsing, the stream, the sockets), so vapi − this is the route's own work."""
    import orjson

    from pete_mcp.contract import ChatOptions, Message
    from pete_mcp.core.provider import TextDelta
    from pete_mcp.gateway import ChatTurn

    headers = [(b"content-type", b"text/event-stream")]
    options = ChatOptions(max_tokens=max_tokens, temperature=0)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send, within=core)
            return
        body = await read_body(receive)
        if scope["method"] != "POST":  # the readiness probe
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        request = orjson.loads(body)
        turn = ChatTurn(
            [Message(role=m["role"], content=m["content"]) for m in request["messages"]],
            conversation_id=request["call"]["id"],
            options=options,
            source="bench",
        )
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        async for event in core.chat(turn):
            if isinstance(event, TextDelta) and event.text:
                frame = b'data: {"choices":[{"delta":{"content":' + orjson.dumps(event.text) + b"}}]}\n\n"
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    return app


def serve_core_http(port: int, backend: str, model: str, data_dir: Path, max_tokens: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    app = core_http_app(build_core_on(backend, model, data_dir), max_tokens)
    serve_on(app, port, lifespan="on")


# --- processes --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# `--pin`: the gateways under test (pete, the core's process, litellm) on CPU 0, the mock model
# and the load generators on the others, so on a small machine the load generators' CPU does not
# land on the route's side only (the core arm makes its load in its own process).
_PINS: dict[str, str] = {}


def pinned(kind: str) -> list[str]:
    """`taskset -c CPUS` for a process of `kind` ("gateway" or "load") under `--pin`, else nothing."""
    cpus = _PINS.get(kind)
    return ["taskset", "-c", cpus] if cpus else []


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, stdout=log.open("wb"), stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=REPO_ROOT
    )


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


async def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{url} exited early:\n{tail(log)}")
            try:
                if (await client.get(url, timeout=2)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s:\n{tail(log)}")


def litellm_command() -> list[str] | None:
    exe = shutil.which("litellm") or str(Path(sys.executable).with_name("litellm"))
    return [exe] if Path(exe).exists() else None


def litellm_config(path: Path, backend: str, model: str) -> Path:
    path.write_text(
        "model_list:\n"
        "  - model_name: jamie\n"
        "    litellm_params:\n"
        f"      model: openai/{model}\n"
        f"      api_base: {backend}/v1\n"
        "      api_key: not-used\n"
        "      stream_timeout: 30\n"
        "router_settings:\n"
        "  num_retries: 0\n"
        "general_settings:\n"
        f"  master_key: {KEY}\n"
        "litellm_settings:\n"
        "  callbacks: []\n"
        "  num_retries: 0\n"
        "  drop_params: true\n"
    )
    return path


# --- measuring --------------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class Load:
    """How requests arrive: `concurrency` callers back to back (pace 0: the next request as soon as
    the last one's stream ended, a saturation test), or paced like live calls, each caller waiting
    a random 0–2 × `pace_ms` before each turn (a caller listens to Jamie and speaks in between).

    Back-to-back callers start at random moments within `spread_ms` (one reply's length), so from
    the first request on they are spread over a reply the way callers in step with their own
    replies are. Started in the same millisecond, every caller's first turn would queue behind all
    the others' start-up work: that measures a burst, not the level."""

    concurrency: int
    pace_ms: float = 0.0
    spread_ms: float = 0.0

    @property
    def label(self) -> str:
        """The table's first cell."""
        if not self.pace_ms:
            return str(self.concurrency)
        return f"{self.concurrency} calls, a turn per ~{self.pace_ms / 1000:g} s each"

    @property
    def title(self) -> str:
        """The load in a sentence: `c=32`, or the paced calls."""
        return self.label if self.pace_ms else f"c={self.concurrency}"


BatchRunner = Callable[[int, Load], Awaitable[list[float]]]


@dataclass
class Target:
    """A thing to measure: `run_batch(n, load)` returns n TTFTs in ms."""

    name: str
    run_batch: BatchRunner
    samples: dict[Load, list[float]] = field(default_factory=dict)


def concurrently(first_content: Callable[[], Awaitable[float]]) -> BatchRunner:
    async def run_batch(n: int, load: Load) -> list[float]:
        out: list[float] = []
        left = [n]

        async def worker() -> None:
            if load.spread_ms and not load.pace_ms:
                await asyncio.sleep(random.uniform(0, load.spread_ms / 1000))
            while left[0] > 0:
                left[0] -= 1
                if load.pace_ms:  # the caller's own speech and listening before this turn
                    await asyncio.sleep(random.uniform(0, 2 * load.pace_ms / 1000))
                try:
                    out.append(await first_content() * 1000)
                except (httpx.HTTPError, RawHTTPError) as exc:  # a failed request (NaN), not a crash of the run
                    print(f"    request failed: {type(exc).__name__}: {exc}"[:200], file=sys.stderr)
                    out.append(float("nan"))
                    await asyncio.sleep(FAILED_PAUSE_S)

        await asyncio.gather(*(worker() for _ in range(min(load.concurrency, n))))
        return out

    return run_batch


@dataclass(frozen=True)
class RequestBodies:
    """The same question for each target, in the shape each one takes."""

    model: str
    max_tokens: int

    def openai(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "stream": True,
            "max_tokens": self.max_tokens,
            "temperature": 0,
            "messages": [{"role": "user", "content": QUESTION}],
        }

    def proxy(self) -> dict[str, Any]:
        return {**self.openai(), "model": "jamie"}

    def vapi(self) -> dict[str, Any]:
        """What VAPI sends: the conversation plus `call` (a new call each time) and `customer`."""
        return {
            **self.proxy(),
            "call": {"id": f"bench-{uuid.uuid4().hex[:12]}", "type": "inboundPhoneCall"},
            "customer": {"number": "+15551234567"},
        }


# The first non-empty `content` in a stream's bytes, whoever serialised it (with or without spaces).
FIRST_CONTENT = re.compile(rb'"content":\s*"[^"]')


def http_target(
    name: str, client: httpx.AsyncClient, url: str, body: Callable[[], dict[str, Any]], *, key: str | None = None
) -> Target:
    headers = {"authorization": f"Bearer {key}"} if key else {}

    async def first_content() -> float:
        started = time.perf_counter()
        ttft = float("nan")
        seen = b""
        async with client.stream("POST", url, json=body(), headers=headers) as response:
            response.raise_for_status()
            async for data in response.aiter_raw():  # raw bytes: the client's own cost stays small and equal
                if ttft != ttft:
                    seen += data
                    if FIRST_CONTENT.search(seen):
                        ttft = time.perf_counter() - started
        return ttft

    return Target(name, concurrently(first_content))


def raw_target(name: str, url: str, body: Callable[[], dict[str, Any]], *, key: str | None = None) -> Target:
    """`http_target` with `RawClient`: the same request and the same TTFT, from a client that takes
    the least of the CPUs it shares with the servers (`--load-client raw`, the default)."""
    import orjson

    client = RawClient(url)
    headers = f"authorization: Bearer {key}\r\n".encode() if key else b""

    async def first_content() -> float:
        request = orjson.dumps(body())
        seen = bytearray()
        ttft = float("nan")

        def on_body(data: bytes) -> None:  # called as the bytes are parsed, so TTFT waits for nothing else
            nonlocal ttft
            if ttft != ttft:
                seen.extend(data)
                if FIRST_CONTENT.search(seen):
                    ttft = time.perf_counter() - started

        started = time.perf_counter()
        await client.post(request, on_body, headers=headers)
        return ttft

    return Target(name, concurrently(first_content))


def core_first_content(core: Any, max_tokens: int) -> Callable[[], Awaitable[float]]:
    """TTFT of `core.chat` for one new conversation, measured in the process that calls it."""
    from pete_mcp.contract import ChatOptions, Message
    from pete_mcp.core.provider import TextDelta
    from pete_mcp.gateway import ChatTurn

    async def first_content() -> float:
        turn = ChatTurn(
            [Message(role="user", content=QUESTION)],
            conversation_id=f"bench-{uuid.uuid4().hex[:12]}",
            options=ChatOptions(max_tokens=max_tokens, temperature=0),
            source="bench",
        )
        started = time.perf_counter()
        ttft = float("nan")
        async for event in core.chat(turn):
            if ttft != ttft and isinstance(event, TextDelta) and event.text:
                ttft = time.perf_counter() - started
        return ttft

    return first_content


async def serve_batches(targets: dict[str, BatchRunner]) -> None:
    """A measuring process's loop: `target n c pace_ms spread_ms` on stdin → a JSON list of TTFTs (ms) on stdout."""
    print("ready", flush=True)
    while line := await asyncio.to_thread(sys.stdin.readline):
        name, n, concurrency, pace_ms, spread_ms = line.split()
        load = Load(int(concurrency), float(pace_ms), float(spread_ms))
        print(json.dumps(await targets[name](int(n), load)), flush=True)


async def serve_core(backend: str, model: str, data_dir: Path, max_tokens: int) -> None:
    """`--role core`: calls the core directly, in its own process."""

    async with build_core_on(backend, model, data_dir) as core:
        from pete_mcp.app import freeze_startup_heap

        freeze_startup_heap()  # as `pete serve` ends start-up
        await serve_batches({"core": concurrently(core_first_content(core, max_tokens))})


async def serve_client(urls: dict[str, str], model: str, max_tokens: int, kind: str) -> None:
    """`--role client`: one shard of the HTTP load (direct, vapi, litellm), in its own process, with
    the `--load-client` `kind`: `raw` (`RawClient`), `aiohttp` (httpx over aiohttp) or `httpx`."""
    body = RequestBodies(model, max_tokens)
    shapes = {
        "direct": (body.openai, None),
        "vapi": (body.vapi, KEY),
        "core-http": (body.vapi, None),
        "litellm": (body.proxy, KEY),
    }
    if kind == "raw":
        raw = {name: raw_target(name, url, shapes[name][0], key=shapes[name][1]) for name, url in urls.items()}
        await serve_batches({name: target.run_batch for name, target in raw.items()})
        return
    timeout = httpx.Timeout(120, connect=5)
    if kind == "aiohttp":
        from pete_mcp.gateway import outbound_http

        opened = outbound_http(timeout)
    else:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        opened = httpx.AsyncClient(timeout=timeout, limits=limits)
    async with opened as client:
        targets = {
            name: http_target(name, client, url, shapes[name][0], key=shapes[name][1]).run_batch
            for name, url in urls.items()
        }
        await serve_batches(targets)


class BatchProcess:
    """A measuring subprocess (`--role core` or `--role client`), driven over stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self.stdin, self.stdout = proc.stdin, proc.stdout

    @classmethod
    async def start(cls, args: list[str], *, kind: str = "load") -> BatchProcess:
        proc = await asyncio.create_subprocess_exec(
            *pinned(kind),
            sys.executable,
            __file__,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        self = cls(proc)
        if (await asyncio.wait_for(self.stdout.readline(), 120)).strip() != b"ready":
            raise RuntimeError(f"measuring process {args[:2]} did not start")
        return self

    async def run(self, target: str, n: int, load: Load) -> list[float]:
        self.stdin.write(f"{target} {n} {load.concurrency} {load.pace_ms} {load.spread_ms}\n".encode())
        await self.stdin.drain()
        return [float(v) if v is not None else float("nan") for v in json.loads(await self.stdout.readline())]

    async def stop(self) -> None:
        self.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()


def sharded(name: str, shards: list[BatchProcess]) -> Target:
    """An HTTP target whose load is spread over client processes (one event loop cannot drive 32
    streams on a busy 2-vCPU machine without adding its own queueing to every TTFT)."""

    async def run_batch(n: int, load: Load) -> list[float]:
        concurrency = load.concurrency
        used = shards[: max(1, min(len(shards), concurrency))]
        jobs = []
        for i, shard in enumerate(used):
            share_n = n // len(used) + (1 if i < n % len(used) else 0)
            share_c = concurrency // len(used) + (1 if i < concurrency % len(used) else 0)
            if share_n:
                jobs.append(shard.run(name, share_n, Load(max(1, share_c), load.pace_ms, load.spread_ms)))
        return [v for part in await asyncio.gather(*jobs) for v in part]

    return Target(name, run_batch)


async def run_level(targets: list[Target], load: Load, requests: int, rounds: int, warmup: int) -> None:
    """`requests` per target under `load`, in `rounds` interleaved slices, after `warmup` each.

    A slice holds at least four requests per caller: with fewer, a level of 32 would put fewer than
    32 in flight, each caller's one request starting with all the others'."""
    for target in targets:
        await target.run_batch(warmup, load)
    per_round = max(1, requests // rounds, 4 * load.concurrency if load.concurrency > 1 else 0)
    order = random.Random(load.concurrency)
    for _ in range(rounds):
        # A new order each round, and a pause before each batch, so no target always follows
        # the slowest one while it is still busy (LiteLLM keeps a core busy after a burst).
        for target in order.sample(targets, len(targets)):
            await asyncio.sleep(SETTLE_S)
            target.samples.setdefault(load, []).extend(await target.run_batch(per_round, load))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(v for v in values if v == v)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class Level:
    load: Load
    p: dict[str, tuple[float, float]]  # target → (p50, tail percentile) ms
    failed: dict[str, int] = field(default_factory=dict)  # target → failed requests

    def added(self, a: str, b: str) -> tuple[float, float]:
        return (self.p[a][0] - self.p[b][0], self.p[a][1] - self.p[b][1])


def summarise(targets: list[Target], tail_q: float = 99) -> list[Level]:
    levels = sorted({c for t in targets for c in t.samples})
    return [
        Level(
            c,
            {t.name: (pct(t.samples[c], 50), pct(t.samples[c], tail_q)) for t in targets if c in t.samples},
            {t.name: sum(v != v for v in t.samples[c]) for t in targets if c in t.samples},
        )
        for c in levels
    ]


def table(levels: list[Level], title: str, tail_q: float = 99) -> list[str]:
    names = ["direct", "core", "core-http", "vapi", "litellm"]
    lines = [
        f"**{title}** — TTFT p50 / p{tail_q:g} in ms; *added* = difference of the percentiles.",
        "",
        "| c | direct | core | core over HTTP | VAPI route | LiteLLM | VAPI added (vapi − core) "
        "| route's own work (vapi − core over HTTP) | Pete added (vapi − direct) | LiteLLM added (litellm − direct) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for level in levels:
        cells = [
            f"{level.p[n][0]:.1f} / {level.p[n][1]:.1f}"
            + (f" ({level.failed[n]} failed)" if level.failed.get(n) else "")
            if n in level.p
            else "–"
            for n in names
        ]

        def diff(a: str, b: str, level: Level = level) -> str:
            if a not in level.p or b not in level.p:
                return "–"
            p50, p99 = level.added(a, b)
            return f"{p50:+.1f} / {p99:+.1f}"

        lines.append(
            f"| {level.load.label} | {' | '.join(cells)} | {diff('vapi', 'core')} | {diff('vapi', 'core-http')} "
            f"| {diff('vapi', 'direct')} | {diff('litellm', 'direct')} |"
        )
    return lines


def verdict(levels: list[Level]) -> list[str]:
    out: list[str] = []
    for level in levels:

        def against(base: str, what: str, level: Level = level) -> str:
            p50, p99 = level.added("vapi", base)
            ok = p50 <= 5 and p99 <= 25
            return f"{p50:+.1f} ms p50 / {p99:+.1f} ms p99 {what} (≤ 5 / ≤ 25: " + ("met" if ok else "**missed**") + ")"

        line = f"- {level.load.title}: VAPI route adds " + against("core", "over the core in-process")
        if "core-http" in level.p:
            line += ", " + against("core-http", "over the core behind a bare HTTP face")
        if "litellm" in level.p:
            ours, theirs = level.added("vapi", "direct"), level.added("litellm", "direct")
            better = ours[0] < theirs[0] and ours[1] < theirs[1]
            line += f"; Pete total {ours[0]:+.1f} / {ours[1]:+.1f} vs LiteLLM {theirs[0]:+.1f} / {theirs[1]:+.1f} ms "
            line += "(" + ("less than LiteLLM" if better else "**not less than LiteLLM**") + ")"
        out.append(line + ".")
    return out


# --- one measured stack -------------------------------------------------------------------------
async def measure(
    backend: str,
    model: str,
    args: argparse.Namespace,
    work: Path,
    levels: list[Load],
    use_litellm: bool,
    *,
    tail_q: float = 99,
) -> list[Level]:
    """Start pete (and litellm) in front of `backend`, measure every target under each load."""
    procs: list[subprocess.Popen[bytes]] = []
    logs: dict[str, Path] = {}  # each HTTP target's server log, shown when its requests failed
    try:
        pete_port = free_port()
        log = logs["vapi"] = work / f"pete-{pete_port}.log"
        procs.append(
            spawn(
                [
                    *pinned("gateway"),
                    sys.executable,
                    __file__,
                    "--role",
                    "pete",
                    "--port",
                    str(pete_port),
                    "--backend",
                    backend,
                    "--model",
                    model,
                    "--data-dir",
                    str(work / f"pete-data-{pete_port}"),
                ],
                log,
            )
        )
        pete = f"http://127.0.0.1:{pete_port}"
        await wait_ready(pete + "/healthz", procs[-1], log)
        core_http_port = free_port()
        log = logs["core-http"] = work / f"core-http-{core_http_port}.log"
        procs.append(
            spawn(
                [
                    *pinned("gateway"),
                    sys.executable,
                    __file__,
                    "--role",
                    "core-http",
                    "--port",
                    str(core_http_port),
                    "--backend",
                    backend,
                    "--model",
                    model,
                    "--max-tokens",
                    str(args.max_tokens),
                    "--data-dir",
                    str(work / f"core-http-data-{core_http_port}"),
                ],
                log,
            )
        )
        core_http = f"http://127.0.0.1:{core_http_port}"
        await wait_ready(core_http + "/", procs[-1], log)
        litellm_url = None
        if use_litellm:
            command = litellm_command()
            if command is None:
                print("LiteLLM is not installed: `uv sync --group bench` (skipping its column)", file=sys.stderr)
            else:
                port = free_port()
                config = litellm_config(work / f"litellm-{port}.yaml", backend, model)
                log = logs["litellm"] = work / f"litellm-{port}.log"
                env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true"}
                procs.append(
                    spawn(
                        [
                            *pinned("gateway"),
                            *command,
                            "--config",
                            str(config),
                            "--port",
                            str(port),
                            "--num_workers",
                            "1",
                        ],
                        log,
                        env,
                    )
                )
                litellm_url = f"http://127.0.0.1:{port}"
                await wait_ready(litellm_url + "/health/liveliness", procs[-1], log, timeout_s=180)

        urls = {
            "direct": backend + "/v1/chat/completions",
            "vapi": pete + "/vapi/chat/completions",
            "core-http": core_http + "/",
        }
        if litellm_url:
            urls["litellm"] = litellm_url + "/v1/chat/completions"
        common = ["--model", model, "--max-tokens", str(args.max_tokens)]
        core_proc = await BatchProcess.start(
            ["--role", "core", "--backend", backend, "--data-dir", str(work / f"core-data-{pete_port}"), *common],
            kind="gateway",
        )
        clients = [
            await BatchProcess.start(
                ["--role", "client", "--urls", json.dumps(urls), "--load-client", args.load_client, *common]
            )
            for _ in range(args.clients)
        ]
        try:
            core = Target("core", lambda n, load: core_proc.run("core", n, load))
            targets = [sharded("direct", clients), core, sharded("core-http", clients), sharded("vapi", clients)]
            if litellm_url:
                targets.append(sharded("litellm", clients))
            for load in levels:
                c = load.concurrency
                print(f"  {load.title}: {args.requests}+ requests per target ...", file=sys.stderr)
                await run_level(targets, load, args.requests, args.rounds, warmup=max(args.warmup, c))
            for target in targets:
                failed = sum(v != v for samples in target.samples.values() for v in samples)
                if failed and target.name in logs:
                    ends = tail(logs[target.name])
                    print(f"  {target.name}: {failed} requests failed; its log ends:\n{ends}", file=sys.stderr)
        finally:
            for proc in [core_proc, *clients]:
                await proc.stop()
        return summarise(targets, tail_q)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def run(args: argparse.Namespace) -> str:
    reply_ms = args.first_ms + (args.deltas - 1) * args.gap_ms  # the mock's reply, first delta to last
    levels = [Load(int(c), spread_ms=reply_ms) for c in args.concurrency.split(",")]
    if args.calls:
        levels.append(Load(args.calls, args.pace_ms))
    with tempfile.TemporaryDirectory(prefix="pete-bench-vapi-") as tmp:
        work = Path(tmp)
        mock_port = free_port()
        log = work / "mock.log"
        mock = spawn(
            [
                *pinned("load"),
                sys.executable,
                __file__,
                "--role",
                "mock",
                "--port",
                str(mock_port),
                "--first-ms",
                str(args.first_ms),
                "--deltas",
                str(args.deltas),
                "--gap-ms",
                str(args.gap_ms),
            ],
            log,
        )
        try:
            backend = f"http://127.0.0.1:{mock_port}"
            await wait_ready(backend + "/v1/models", mock, log)
            print("mock backend:", file=sys.stderr)
            mocked = await measure(backend, MODEL, args, work, levels, not args.no_litellm)
        finally:
            mock.terminate()
            mock.wait(timeout=10)
        real: list[Level] = []
        if args.real_model:
            from pete_mcp.local.model_server import SMOLLM2_ALIAS, ModelServer

            print("real model (llama.cpp SmolLM2):", file=sys.stderr)
            with ModelServer(data_dir=work / "model", port=0, n_threads=2) as server:
                real_args = argparse.Namespace(
                    **{**vars(args), "requests": args.real_requests, "max_tokens": 16, "warmup": 5, "rounds": 4}
                )
                real = await measure(
                    server.url, SMOLLM2_ALIAS, real_args, work, [Load(1)], not args.no_litellm, tail_q=90
                )
    return report(args, mocked, real)


def report(args: argparse.Namespace, mocked: list[Level], real: list[Level]) -> str:
    started, load = time.strftime("%Y-%m-%d %H:%M"), os.getloadavg()[0]
    lines = [
        SECTION,
        "",
        f"Run {started}, Python {sys.version.split()[0]}, load average {load:.1f} at the end. "
        "Command: `LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_OFFLINE_MODE=true uv run --group bench pete bench "
        f"vapi_overhead -- --requests {args.requests} --concurrency {args.concurrency}"
        + (" --real-model" if args.real_model else "")
        + (" --pin" if args.pin else "")
        + (f" --load-client {args.load_client}" if args.load_client != "raw" else "")
        + (f" --calls {args.calls} --pace-ms {args.pace_ms:g}" if args.calls else "")
        + "`",
        "",
        f"Mock backend: first delta after {args.first_ms:g} ms, then {args.deltas - 1} more {args.gap_ms:g} ms apart "
        "(a word each of a spoken reply, punctuation included); "
        f"{args.requests} measured requests per target at c=1 (at higher concurrency at least 4 per caller "
        "in each round, the callers starting at random moments within one reply), "
        f"interleaved in {args.rounds} rounds after a warm-up; "
        f"HTTP load from {args.clients} client processes ({LOAD_CLIENTS[args.load_client]}). "
        "One machine: mock, Pete (uvicorn, 1 worker), LiteLLM (1 worker), the core process and the clients "
        "share its cores (2 vCPUs, shared with other work), so treat absolute figures as relative."
        + (
            f" Pinned: gateways under test on CPU {_PINS['gateway']}, mock and clients on CPU {_PINS['load']}."
            if _PINS
            else ""
        ),
        "",
        *table(mocked, "Mock backend"),
        "",
        *verdict(mocked),
        "",
        "Reading it: *direct* is the floor (the mock as a client sees it). *core* calls `core.chat` in "
        "its own process with no HTTP at all; *core over HTTP* serves the same core behind the thinnest "
        "HTTP face (uvicorn, the body's messages in, one SSE frame per delta out, nothing else), "
        "measured by the same client processes as the VAPI route. So vapi − core counts the HTTP hop "
        "itself (sockets, parsing, the clients' own queueing) as well as the route, and vapi − core over "
        "HTTP is the route's own work: auth, the strict body parser, the conversation sync, the emergency "
        "check, VAPI's frames and the edge middleware. The route frames text where VAPI's chunkPlan can "
        "cut it (5 content frames for this reply, the bare face 20), which can put it below the bare face. "
        "LiteLLM is measured against the same mock with the same client processes."
        + (
            f" The *{args.calls} calls* row paces each caller like a live call (a random 0–2 × "
            f"{args.pace_ms / 1000:g} s before each turn), so turns arrive at random moments; the numbered rows "
            "send each caller's next request the moment its last stream ends (a saturation test)."
            if args.calls
            else ""
        ),
    ]
    if real:
        lines += [
            "",
            *table(real, f"Real model (SmolLM2 on llama.cpp, c=1, {args.real_requests} requests, max_tokens 16)", 90),
            "",
            "The model's own TTFT varies far more than any gateway adds (p90 rather than p99: few samples).",
        ]
    return "\n".join(lines) + "\n"


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--role", choices=["bench", "mock", "pete", "core", "core-http", "client"], default="bench")
    parser.add_argument("--urls", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, default=4, help="load-generator processes the HTTP load is spread over")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backend", default="")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--first-ms", type=float, default=20.0)
    parser.add_argument("--deltas", type=int, default=20)
    parser.add_argument("--gap-ms", type=float, default=5.0)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--calls",
        type=int,
        default=0,
        help="also measure this many live calls, each caller pausing a random 0-2 x --pace-ms before each turn",
    )
    parser.add_argument("--pace-ms", type=float, default=1000.0, help="a paced caller's mean pause between turns")
    parser.add_argument("--real-model", action="store_true", help="also measure c=1 against llama.cpp SmolLM2")
    parser.add_argument("--real-requests", type=int, default=40)
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument(
        "--outbound",
        choices=["aiohttp", "httpx"],
        default="aiohttp",
        help="the gateways' client to the backend: Pete's (aiohttp underneath) or httpx's own transport",
    )
    parser.add_argument(
        "--load-client",
        choices=list(LOAD_CLIENTS),
        default="raw",
        help="the load generators' client: raw (kept-alive sockets and httptools, the lightest), "
        "httpx over aiohttp (both on uvloop), or httpx's own transport on asyncio (the heaviest)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="gateways under test on CPU 0, the mock and load generators on the other CPUs (Linux, taskset)",
    )
    args = parser.parse_args()
    import uvloop

    if args.outbound == "httpx":
        os.environ[OUTBOUND_ENV] = "httpx"
    if args.role == "mock":
        serve_mock(args.port, args.first_ms, args.deltas, args.gap_ms)
        return
    if args.role == "pete":
        serve_pete(args.port, args.backend, args.model, Path(args.data_dir))
        return
    if args.role == "core-http":
        serve_core_http(args.port, args.backend, args.model, Path(args.data_dir), args.max_tokens)
        return
    if args.role == "core":  # on uvloop, as uvicorn runs the core in every gateway
        uvloop.run(serve_core(args.backend, args.model, Path(args.data_dir), args.max_tokens))
        return
    if args.role == "client":
        serving = serve_client(json.loads(args.urls), args.model, args.max_tokens, args.load_client)
        if args.load_client == "httpx":  # as the load has always run with httpx's own transport
            asyncio.run(serving)
        else:
            uvloop.run(serving)
        return
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or shutil.which("taskset") is None:
            parser.error("--pin needs two CPUs or more and taskset (util-linux)")
        _PINS.update(gateway=str(cpus[0]), load=",".join(map(str, cpus[1:])))
    body = asyncio.run(run(args))
    print(body)
    if not args.no_write:
        write_section(body)


if __name__ == "__main__":
    main()
