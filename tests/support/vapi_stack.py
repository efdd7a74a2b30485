"""The VAPI face over a real core, for tests: `vapi_stack(tmp_path, providers)` and SSE helpers.

The app runs in-process (httpx over `ASGITransport`, its lifespan entered), with the core's
real SQLite store in `tmp_path`; providers are whatever the test passes (a real
OpenAI-compatible provider on the model server, or a scripted stand-in for fault tests).
`read_frames` / `assert_vapi_stream` check a Custom LLM stream the way VAPI reads it.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
from starlette.applications import Starlette

from pete_mcp.app import build_app
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.provider import ModelProvider
from pete_mcp.core.settings import Settings
from pete_mcp.core.tenant_directory import DEMO_TENANTS, TenantRow, upsert_tenants
from pete_mcp.gateway import Core, build_core
from pete_vapi import VapiFace, vapi_face

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vapi"
JAMIE_PROMPT = "You are Jamie, a property-management assistant. Answer in one short sentence."


def fixture(name: str) -> dict[str, Any]:
    """A VAPI payload from tests/fixtures/vapi (a fresh copy each time)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def jamie_registry(provider: str, model: str = "m", *, window: int = 2048) -> ModelRegistry:
    spec = ModelSpec("jamie", (Route(provider, model),), window, "Jamie", JAMIE_PROMPT)
    return ModelRegistry({"jamie": spec}, "jamie")


@dataclass
class VapiStack:
    core: Core
    face: VapiFace
    app: Starlette
    client: httpx.AsyncClient

    async def chat(self, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> httpx.Response:
        return await self.client.post("/vapi/chat/completions", json=body, headers=dict(headers or {}))

    async def webhook(self, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> httpx.Response:
        return await self.client.post("/vapi/webhook", json=body, headers=dict(headers or {}))

    async def thread(self, call_id: str) -> list[tuple[str, str]]:
        return [(m["role"], m["content"]) for m in await self.core.store.thread(call_id)]


@asynccontextmanager
async def vapi_stack(
    tmp_path: Path,
    providers: Mapping[str, ModelProvider],
    *,
    http: httpx.AsyncClient | None = None,
    model: str = "m",
    tenants: Sequence[TenantRow] = DEMO_TENANTS,
    **settings: Any,
) -> AsyncIterator[VapiStack]:
    """The VAPI face alone over a fresh core whose only model, `jamie`, runs on the first provider.

    The tenant directory holds `tenants` (the demo tenants unless told otherwise).
    """
    config = Settings.model_validate({"data_dir": tmp_path, "hedging": False, **settings})
    core = build_core(config, http=http, providers=providers, registry=jamie_registry(next(iter(providers)), model))
    face = vapi_face(core)
    app = build_app(core, faces=[face])
    async with app.router.lifespan_context(app):
        await upsert_tenants(core.store, tenants)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as client:
            yield VapiStack(core, face, app, client)


def chat_body(*messages: tuple[str, str], call_id: str | None = "call-1", **extra: Any) -> dict[str, Any]:
    """A Custom LLM request as VAPI sends it: the whole conversation, `call`, `customer`."""
    body: dict[str, Any] = {
        "model": "jamie",
        "stream": True,
        "max_tokens": 40,
        "temperature": 0,
        "messages": [{"role": "system", "content": JAMIE_PROMPT}, *({"role": r, "content": c} for r, c in messages)],
        "customer": {"number": "+15551234567"},
        "phoneNumber": {"id": "pn-1", "twilioAuthToken": "twilio-auth-token-DO-NOT-LOG"},
    }
    if call_id is not None:
        body["call"] = {"id": call_id, "type": "inboundPhoneCall"}
    body.update(extra)
    return body


def read_frames(text: str) -> list[Any]:
    """The `data:` payloads of an SSE body, decoded (`[DONE]` stays a string)."""
    frames: list[Any] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), f"not a data frame: {block!r}"
        payload = block[len("data: ") :]
        frames.append(payload if payload == "[DONE]" else json.loads(payload))
    return frames


@dataclass
class VapiStreamSummary:
    content: str
    finish_reason: str
    tool_calls: list[dict[str, Any]]


def assert_vapi_stream(text: str) -> VapiStreamSummary:
    """Check a stream frame by frame as VAPI needs it; return what it said.

    Role frame first; every JSON frame a `chat.completion.chunk` with `choices`; exactly one
    finish frame with `delta: {}`, last before `data: [DONE]`; nothing after `[DONE]`.
    """
    frames = read_frames(text)
    assert frames and frames[-1] == "[DONE]", "the stream must end with data: [DONE]"
    chunks = frames[:-1]
    assert "[DONE]" not in chunks, "only one [DONE], at the very end"
    assert chunks, "no chunks before [DONE]"
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1, "one completion id per stream"
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert isinstance(chunk["choices"], list) and chunk["choices"], "every frame carries choices"
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant", "the role frame comes first"
    finals = [c for c in chunks if c["choices"][0]["finish_reason"] is not None]
    assert len(finals) == 1 and finals[0] is chunks[-1], "one finish frame, the last before [DONE]"
    assert chunks[-1]["choices"][0]["delta"] == {}, "the finish frame's delta is empty"
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls") or []]
    return VapiStreamSummary(content, chunks[-1]["choices"][0]["finish_reason"], calls)


async def eventually(check: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Poll `check` until it holds: the state changes in another task or process, with no event to wait on."""
    with anyio.fail_after(timeout_s):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await cast(Awaitable[object], result)
            if result:
                return
            await anyio.sleep(0.01)
