"""Two real `pete serve` processes on one PostgreSQL, each on its own loopback port, behind nothing.

A VAPI call is replayed with its turns alternating between the two (and one pair sent to both at
once); a switch_model over MCP on one is seen by list_models on the other within a second; and
the RunPod endpoint being down (nothing listens on its port) reaches Slack exactly once.
The model is the stand-in Ollama server; Slack is a loopback stand-in that counts posts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pete_mcp.core import Store
from pete_mcp.core.storage import PostgresEngine
from pete_mcp.local.model_server import pick_free_port
from tests.support.ollama_standin import RunningOllama, ThreadedUvicorn
from tests.support.vapi_stack import chat_body

pytestmark = pytest.mark.anyio

TOKEN = "replica-test-token"
SLACK_QUIET_S = 3.0  # after the first page, how long no second page may arrive (6 evaluation intervals)


class SlackStandIn:
    def __init__(self) -> None:
        self.posts: list[str] = []
        self.first = threading.Event()
        self.server = ThreadedUvicorn(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]), pick_free_port())

    async def hook(self, request: Request) -> PlainTextResponse:
        self.posts.append((await request.body()).decode())
        self.first.set()
        return PlainTextResponse("ok")


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    standin = SlackStandIn()
    standin.server.start()
    try:
        yield standin
    finally:
        standin.server.stop()


def start_replica(
    tmp_path: Path, name: str, url: str, ollama: str, slack_url: str
) -> tuple[subprocess.Popen[str], int]:
    port = pick_free_port()
    models = tmp_path / "models.json"
    models.write_text(
        json.dumps(
            [
                {"alias": "jamie", "chain": [{"provider": "ollama", "model": "peteollama:jamie-fixed"}]},
                {"alias": "llama", "chain": [{"provider": "ollama", "model": "llama3:latest"}]},
            ]
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_API", "DATABASE_", "SLACK_", "GITHUB_"))}
    env.update(
        DATABASE_URL=url,
        DATA_DIR=str(tmp_path / name),
        REPLICA_ID=name,
        MCP_TOKEN=TOKEN,
        OLLAMA_URL=ollama,
        MODELS_FILE=str(models),
        ACTIVE_MODEL="jamie",
        SLACK_WEBHOOK_URL=slack_url,
        LOCAL_ENDPOINT_PORT=str(pick_free_port()),  # nothing listens there: the RunPod endpoint is down
        ALERT_DOWN_FOR_S="0",
        ALERT_EVAL_INTERVAL_S="0.5",
        METRICS_POLL_INTERVAL_S="0.5",
        HEDGING="false",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pete_mcp", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port


def wait_ready(proc: subprocess.Popen[str], port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pete serve exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)  # not listening yet: the next connect is the readiness check
    raise RuntimeError("pete serve did not become ready")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def history(*turns: str) -> list[tuple[str, str]]:
    said: list[tuple[str, str]] = []
    for i, text in enumerate(turns):
        if i:
            said.append(("assistant", "Rent is due on the first of the month."))
        said.append(("user", text))
    return said


async def active_on(port: int) -> str:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    async with http, Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client:
        models = await client.call_tool("list_models", {})
    data = models.structured_content or {}
    return str(data.get("active", ""))


async def test_two_serve_processes_share_one_call_one_model_and_one_pager(
    tmp_path: Path, postgres_url: str, ollama_standin: RunningOllama, slack: SlackStandIn
) -> None:
    slack_url = f"http://127.0.0.1:{slack.server.port}/hook"
    procs = [start_replica(tmp_path, name, postgres_url, ollama_standin.url, slack_url) for name in ("a", "b")]
    try:
        for proc, port in procs:
            wait_ready(proc, port)
        ports = [port for _, port in procs]
        questions = ["hello", "when is rent due", "can I pay online", "thanks", "one more thing", "bye"]
        async with httpx.AsyncClient(timeout=30) as http:

            async def turn(port: int, n: int) -> None:
                body = chat_body(*history(*questions[:n]), call_id="call-x")
                response = await http.post(f"http://127.0.0.1:{port}/vapi/chat/completions", json=body)
                assert response.status_code == 200

            for n in range(1, 5):
                await turn(ports[n % 2], n)
            async with anyio.create_task_group() as tg:  # barge-in: two turns on two replicas at once
                tg.start_soon(turn, ports[0], 5)
                tg.start_soon(turn, ports[1], 6)

        http2 = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        url_a = f"http://127.0.0.1:{ports[0]}/mcp"
        async with http2, Client(streamable_http_client(url_a, http_client=http2)) as client:
            before = await active_on(ports[1])
            await client.call_tool("switch_model", {"name": "llama", "warm": False})
            switched_at = time.monotonic()
        with anyio.fail_after(5):
            while (after := await active_on(ports[1])) != "llama":
                pass  # each list_models call is the check
        seen_after_s = time.monotonic() - switched_at

        assert await anyio.to_thread.run_sync(slack.first.wait, 30.0), "no Slack page for the endpoint outage"
        await anyio.sleep(SLACK_QUIET_S)  # a negative check: a second page would arrive within this window
    finally:
        for proc, _ in procs:
            stop(proc)
    store = Store(PostgresEngine(postgres_url))
    store.open()
    try:
        stored = await store.thread("call-x")
    finally:
        store.close()
    users = [m["content"] for m in stored if m["role"] == "user"]
    assert users == questions and [m["seq"] for m in stored] == list(range(len(stored)))
    assert (before, after) == ("jamie", "llama") and seen_after_s < 1.0
    pages = [p for p in slack.posts if "RunPod endpoint down" in p]
    assert len(pages) == 1, slack.posts
