"""Fixtures for the MCP server's tests: an OpenAI-compatible stand-in model, cores over it, clients.

The stand-in follows OpenAI's `/v1/chat/completions` streaming shape (`data: {chunk}` lines,
`data: [DONE]`) and `/v1/models`, and can hold its first token until a test releases it
(a cold start, without fixed sleeps) or refuse the key (401). The real provider code
(`OpenAICompatibleProvider`) talks to it in-process through `httpx.ASGITransport`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
import uvicorn
from mcp import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from pete_mcp.core.models import ModelRegistry, ModelSpec
from pete_mcp.core.models import Route as ModelRoute
from pete_mcp.core.settings import Settings
from pete_mcp.faces.mcp.server import build_mcp_server
from pete_mcp.gateway import Core, build_core
from pete_mcp.ops.deploy import Deployer
from pete_mcp.routing.providers.openai_compatible import OpenAICompatibleProvider
from pete_mcp.routing.providers.runpod import RunPodProvider
from pete_mcp.runpod.client import RunPodClient
from pete_mcp.runpod.rest import RunPodRest

if TYPE_CHECKING:  # imported lazily: every support module is its own pytest plugin
    from tests.support.runpod_rest_standin import RunPodStandIn

ERAS = ("auto", "legacy")  # 2026-07-28 and the 2025 handshake era hosts speak
REPLY_WORDS = ("Rent", " is", " due", " on", " the", " first", ".")


@dataclass
class OpenAIStandIn:
    """What the stand-in answers, and a gate that holds the first token until set."""

    words: tuple[str, ...] = REPLY_WORDS
    status: int = 200
    gate: anyio.Event | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    models: tuple[str, ...] = ("tiny", "tiny-2")

    def hold_first_token(self) -> anyio.Event:
        self.gate = anyio.Event()
        return self.gate

    def app(self) -> Starlette:
        async def chat(request: Request) -> Response:
            if request.headers.get("authorization") != "Bearer standin-key" or self.status == 401:
                return JSONResponse({"error": {"message": "Incorrect API key provided"}}, status_code=401)
            body = await request.json()
            self.requests.append(body)
            gate = self.gate
            words = self.words[: body.get("max_tokens") or None]

            async def chunks() -> AsyncIterator[bytes]:
                if gate is not None:
                    await gate.wait()
                for i, word in enumerate(words):
                    finish = "stop" if i == len(words) - 1 else None
                    chunk = {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": finish}]}
                    yield f"data: {json.dumps(chunk)}\n\n".encode()
                usage = {"prompt_tokens": 12, "completion_tokens": len(words), "total_tokens": 12 + len(words)}
                yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
                yield b"data: [DONE]\n\n"

            return StreamingResponse(chunks(), media_type="text/event-stream")

        async def models(request: Request) -> JSONResponse:
            if request.headers.get("authorization") != "Bearer standin-key" or self.status == 401:
                return JSONResponse({"error": {"message": "Incorrect API key provided"}}, status_code=401)
            return JSONResponse({"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})

        return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models)])


def standin_registry() -> ModelRegistry:
    spec = ModelSpec("jamie", (ModelRoute("local", "tiny"),), 2048, "Jamie on the stand-in.", "You are Jamie.")
    other = ModelSpec("backup", (ModelRoute("local", "tiny-2"),), 4096, "A second model.", None)
    return ModelRegistry({spec.alias: spec, other.alias: other}, "jamie")


def make_core(
    tmp_path: Path,
    standin: OpenAIStandIn,
    *,
    runpod: RunPodStandIn | None = None,
    runpod_key: str | None = None,
    **settings: Any,
) -> Core:
    """A core (not yet opened) whose `local` provider is the real OpenAI-compatible provider over `standin`.

    With `runpod`, it also has a `runpod` provider (the real `RunPodProvider` and
    `RunPodClient`) against the RunPod stand-in, for endpoint health and purges.
    """
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=standin.app()))
    providers: dict[str, Any] = {
        "local": OpenAICompatibleProvider("local", http, base_url="http://openai-standin/v1", api_key="standin-key")
    }
    extra: dict[str, Any] = {}
    if runpod is not None:
        key, endpoint_id = runpod_key or runpod.state.api_key, runpod.state.endpoint_id
        client = RunPodClient(runpod.http(), base_url=runpod.base_url, endpoint_id=endpoint_id, api_key=key)
        providers["runpod"] = RunPodProvider(client, use_openai_route=True)
        extra = {"runpod_api_key": key, "runpod_endpoint_id": endpoint_id, "runpod_rest_url": runpod.base_url}
    config = Settings(data_dir=tmp_path, **extra, **settings)
    return build_core(config, http=http, providers=providers, registry=standin_registry())


@asynccontextmanager
async def open_core(tmp_path: Path, standin: OpenAIStandIn, **options: Any) -> AsyncIterator[Core]:
    """`make_core`, opened for the test."""
    async with make_core(tmp_path, standin, **options) as core:
        yield core


def standin_deployer(core: Core, runpod: RunPodStandIn, *, key: str | None = None) -> Deployer:
    key, endpoint_id = key or runpod.state.api_key, runpod.state.endpoint_id
    rest = RunPodRest(runpod.http(), base_url=runpod.base_url, endpoint_id=endpoint_id, api_key=key)
    return Deployer(rest, core.store, core.events, poll_interval_s=0.01)


@asynccontextmanager
async def connect(core: Core, era: str, **client_options: Any) -> AsyncIterator[Client]:
    """An in-memory SDK client on a fresh server over `core`, in the given protocol era."""
    server_options = {k: client_options.pop(k) for k in ("deployer", "update_interval_s") if k in client_options}
    server = build_mcp_server(core, **server_options)
    async with Client(server, mode=era, raise_exceptions=True, **client_options) as client:
        yield client


@pytest.fixture
def openai_standin() -> OpenAIStandIn:
    return OpenAIStandIn()


@pytest.fixture(params=ERAS)
def era(request: pytest.FixtureRequest) -> str:
    return request.param


class ThreadedApp:
    """An ASGI app under uvicorn in a thread on a free loopback port, lifespan on (the Pete app's core)."""

    def __init__(self, app: ASGIApp, *, port: int = 0, **config: Any) -> None:
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **config)
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.port = 0

    def start(self, timeout_s: float = 20.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the app did not start under uvicorn")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve_in_thread(app: ASGIApp, *, port: int = 0, **config: Any) -> Iterator[ThreadedApp]:
    """`config`: more uvicorn options (e.g. ssl_certfile/ssl_keyfile for an https stand-in)."""
    server = ThreadedApp(app, port=port, **config)
    server.start()
    try:
        yield server
    finally:
        server.stop()
