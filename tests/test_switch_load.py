"""Switching models under continuous load, on the real llama.cpp server: no request fails or mixes models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.provider import TextDelta
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import ChatTurn, Core, Reply, build_core
from pete_mcp.routing.providers.openai_compatible import OpenAICompatibleProvider
from tests.support.polling import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CONCURRENCY = 20
ROUTE_MODEL = {"smollm2": "smollm2", "gemma3": "gemma3-270m"}


@dataclass
class Outcome:
    active_at_start: str
    reply: Reply | None
    streamed: str
    error: str | None = None


def registry() -> ModelRegistry:
    return ModelRegistry(
        {alias: ModelSpec(alias, (Route("local", model),), 2048, alias, None) for alias, model in ROUTE_MODEL.items()},
        "smollm2",
    )


async def one_request(core: Core, n: int) -> Outcome:
    turn = ChatTurn(
        [Message(role="user", content=f"Tenant {n}: my sink leaks.")],
        options=ChatOptions(max_tokens=8, temperature=0),
        source="load",
    )
    active = core.active_alias  # chat resolves the active model on its first step, right below
    streamed: list[str] = []
    try:
        async for event in core.chat(turn):
            if isinstance(event, TextDelta):
                streamed.append(event.text)
            elif isinstance(event, Reply):
                return Outcome(active, event, "".join(streamed))
    except Exception as exc:
        return Outcome(active, None, "".join(streamed), f"{type(exc).__name__}: {exc}")
    return Outcome(active, None, "".join(streamed), "no reply")


async def test_switching_under_load_fails_no_request_and_never_mixes_models(
    model_server: object, tmp_path: Path
) -> None:
    outcomes: list[Outcome] = []
    stop = anyio.Event()
    async with httpx.AsyncClient(timeout=120) as http:
        local = OpenAICompatibleProvider(
            "local",
            http,
            base_url=model_server.url + "/v1",
            timeout_s=120,
            first_token_timeout_s=120,  # type: ignore[attr-defined]
        )
        settings = Settings(data_dir=tmp_path, hedging=False)
        async with build_core(settings, providers={"local": local}, registry=registry()) as core:

            async def client(worker: int) -> None:
                n = 0
                while not stop.is_set():
                    outcomes.append(await one_request(core, worker * 1000 + n))
                    n += 1

            async def settled(count: int) -> None:
                await eventually(lambda: len(outcomes) >= count, timeout_s=240, every_s=0.05)

            async with anyio.create_task_group() as tg:
                for worker in range(CONCURRENCY):
                    tg.start_soon(client, worker)
                await settled(CONCURRENCY)
                to_gemma = await core.switch_model("gemma3", by="load-test")
                await settled(len(outcomes) + CONCURRENCY)
                back = await core.switch_model("smollm2", by="load-test")
                await settled(len(outcomes) + CONCURRENCY)
                stop.set()
            history = await core.switch_history()

    failures = [o.error for o in outcomes if o.error]
    assert failures == [], failures[:3]
    for outcome in outcomes:
        reply = outcome.reply
        assert reply is not None
        assert reply.alias == outcome.active_at_start  # resolved once, when it started
        assert (reply.provider, reply.model) == ("local", ROUTE_MODEL[reply.alias])  # wholly one model
        assert reply.text == outcome.streamed
    served = {o.reply.alias for o in outcomes if o.reply}
    assert served == {"smollm2", "gemma3"}
    assert len(outcomes) >= 3 * CONCURRENCY
    assert [(r.from_model, r.to_model, r.ok) for r in history] == [
        ("gemma3", "smollm2", True),
        ("smollm2", "gemma3", True),
    ]
    assert all(r.warmup_s is not None and r.warmup_s > 0 for r in history)
    assert (history[1].warmup_s, history[0].warmup_s) == (to_gemma.warmup_s, back.warmup_s)
    print(f"\n{len(outcomes)} requests, 0 failed; warm-ups {to_gemma.warmup_s} s and {back.warmup_s} s")
