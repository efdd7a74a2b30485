"""A stand-in Ollama server that follows ollama/ollama docs/api.md, for the worker's Ollama backend.

No Ollama binary is obtainable here, so the backend is tested against this app: `/api/chat`
(NDJSON stream of `{"model","created_at","message","done":false}` lines ending in one
`"done": true` object with `done_reason` and nanosecond durations; `stream: false`; an empty
`messages` list loads the model, with `keep_alive: 0` unloads it), `/api/tags`, `/api/ps`,
`/api/version`; an unknown model is a 404 `{"error": "model \\"x\\" not found, try pulling it first"}`.
The reply is scripted text split into word tokens. It runs under uvicorn on loopback, so
streaming and disconnects are real.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pete_mcp.local.model_server import pick_free_port

REPLY = "Hi, this is Jamie from the property office. Rent is due on the first of the month. Anything else?"


@dataclass
class OllamaState:
    """What the stand-in has (models, which are loaded) and what it saw (requests, aborted streams)."""

    models: dict[str, int] = field(
        default_factory=lambda: {"peteollama:jamie-fixed": 4_661_224_676, "llama3:latest": 4_661_224_676}
    )
    loaded: dict[str, Any] = field(default_factory=dict)
    token_delay_s: float = 0.0
    fail_after_tokens: int | None = None
    load_ns: int = 1_500_000_000
    requests: list[dict[str, Any]] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    stream_ended: threading.Event = field(default_factory=threading.Event)
    reply: str = REPLY

    def tokens(self) -> list[str]:
        words = self.reply.split(" ")
        return [words[0], *(" " + word for word in words[1:])]


def build_ollama_app(state: OllamaState) -> Starlette:
    """The stand-in as an ASGI app over `state`."""

    async def chat(request: Request) -> Response:
        body = await request.json()
        state.requests.append(body)
        model = body.get("model", "")
        if model not in state.models:
            return JSONResponse({"error": f'model "{model}" not found, try pulling it first'}, status_code=404)
        messages = body.get("messages") or []
        if not messages:
            return JSONResponse(_load_or_unload(state, model, body.get("keep_alive")))
        load_ns = 0 if model in state.loaded else state.load_ns
        state.loaded[model] = body.get("keep_alive")
        limit = (body.get("options") or {}).get("num_predict")
        tokens = state.tokens()
        done_reason = "stop"
        if limit is not None and limit < len(tokens):
            tokens, done_reason = tokens[:limit], "length"
        final = _final(model, tokens, load_ns, done_reason, prompt_tokens=sum(len(m["content"]) for m in messages))
        if body.get("stream") is False:
            final["message"] = {"role": "assistant", "content": "".join(tokens)}
            return JSONResponse(final)
        return StreamingResponse(_ndjson(state, model, tokens, final), media_type="application/x-ndjson")

    async def tags(request: Request) -> Response:
        return JSONResponse({"models": [_model_entry(name, size) for name, size in state.models.items()]})

    async def ps(request: Request) -> Response:
        entries = []
        for name in state.loaded:
            entry = _model_entry(name, state.models[name])
            entry.update(expires_at="2318-01-01T00:00:00Z", size_vram=state.models[name])
            entries.append(entry)
        return JSONResponse({"models": entries})

    async def version(request: Request) -> Response:
        return JSONResponse({"version": "0.6.8"})

    return Starlette(
        routes=[
            Route("/api/chat", chat, methods=["POST"]),
            Route("/api/tags", tags),
            Route("/api/ps", ps),
            Route("/api/version", version),
        ]
    )


async def _ndjson(state: OllamaState, model: str, tokens: list[str], final: dict[str, Any]) -> AsyncIterator[bytes]:
    finished = False
    try:
        for i, token in enumerate(tokens):
            if state.fail_after_tokens is not None and i == state.fail_after_tokens:
                yield _line({"error": "an error was encountered while running the model: out of memory"})
                finished = True
                return
            if state.token_delay_s:
                await anyio.sleep(state.token_delay_s)
            yield _line(
                {
                    "model": model,
                    "created_at": _now(),
                    "message": {"role": "assistant", "content": token},
                    "done": False,
                }
            )
        yield _line(final)
        finished = True
        state.completed.append(model)
    finally:
        if not finished:
            state.aborted.append(model)
        state.stream_ended.set()


def _load_or_unload(state: OllamaState, model: str, keep_alive: Any) -> dict[str, Any]:
    if keep_alive == 0:
        state.loaded.pop(model, None)
        reason = "unload"
    else:
        state.loaded[model] = keep_alive
        reason = "load"
    return {
        "model": model,
        "created_at": _now(),
        "message": {"role": "assistant", "content": ""},
        "done_reason": reason,
        "done": True,
    }


def _final(model: str, tokens: list[str], load_ns: int, done_reason: str, *, prompt_tokens: int) -> dict[str, Any]:
    eval_ns = 20_000_000 * max(1, len(tokens))
    prompt_ns = 50_000_000
    return {
        "model": model,
        "created_at": _now(),
        "message": {"role": "assistant", "content": ""},
        "done_reason": done_reason,
        "done": True,
        "total_duration": load_ns + prompt_ns + eval_ns,
        "load_duration": load_ns,
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": len(tokens),
        "eval_duration": eval_ns,
    }


def _model_entry(name: str, size: int) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": "2024-05-01T10:00:00.000000000Z",
        "size": size,
        "digest": "365c0bd3c000a25d28ddbf732fe1c6add414de7275464c4e4d1c3b5fcb5d8ad1",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "8.0B",
            "quantization_level": "Q4_0",
        },
    }


# Go's `json.Marshal`, which Ollama streams with: UTF-8 as it is, except `<`, `>`, `&`, U+2028 and
# U+2029, which it escapes. So a C1 control such as U+0085 (NEL) in a reply arrives unescaped.
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _line(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, ensure_ascii=False, separators=(",", ":")).translate(_GO_ESCAPES) + "\n").encode()


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class RunningOllama:
    url: str
    state: OllamaState


class ThreadedUvicorn:
    """An ASGI app under uvicorn in a background thread on a loopback port (start/stop on demand)."""

    def __init__(self, app: Starlette, port: int) -> None:
        self.port = port
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the stand-in Ollama server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@pytest.fixture
def ollama_standin() -> Iterator[RunningOllama]:
    """A stand-in Ollama server on a free loopback port, with fresh state per test."""
    state = OllamaState()
    server = ThreadedUvicorn(build_ollama_app(state), pick_free_port())
    server.start()
    try:
        yield RunningOllama(url=f"http://127.0.0.1:{server.port}", state=state)
    finally:
        server.stop()
