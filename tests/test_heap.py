"""The gateway's memory as the cycle collector sees it: start-up frozen, and a finished request
leaving nothing of its own behind for the collector to find (its pauses are every call's p99)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import httpx
import pytest
from starlette.applications import Starlette

import pete_mcp.app
from pete_mcp.contract import Message
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import ChatTurn, build_core
from pete_mcp.routing._race import Race
from tests.support.scripted import ScriptedProvider
from tests.test_outbound_http import client, keeps_alive, serving

pytestmark = pytest.mark.anyio


@contextmanager
def collector_off() -> Iterator[None]:
    """Nothing is collected meanwhile, so what is gone was freed by its reference count alone."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def alive(kind: type) -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


async def started_app(app: Starlette) -> int:
    """Run the app's start-up and shutdown; the freeze count in between."""
    async with app.router.lifespan_context(app):
        return gc.get_freeze_count()


async def test_pete_serve_freezes_what_start_up_left_and_a_plain_app_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[Any] = []
    monkeypatch.setattr(pete_mcp.app.uvicorn, "run", lambda app, **_: served.append(app))
    settings = Settings(data_dir=tmp_path)
    gc.unfreeze()
    try:
        assert await started_app(pete_mcp.app.build_app(build_core(settings))) == 0
        pete_mcp.app.serve(settings.model_copy(update={"data_dir": tmp_path / "served"}))
        assert await started_app(served[0]) > 10_000  # the modules, models and routes start-up made
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual


async def test_a_finished_request_frees_its_race_without_the_collector(tmp_path: Path) -> None:
    spec = ModelSpec("a", (Route("p", "m"),), 2048, "A", None)
    core = build_core(
        Settings(data_dir=tmp_path), providers={"p": ScriptedProvider("p")}, registry=ModelRegistry({"a": spec}, "a")
    )
    async with core:
        with collector_off():
            before = alive(Race)
            for i in range(3):
                turn = ChatTurn([Message(role="user", content="hi")], conversation_id=f"c{i}")
                assert [e async for e in core.chat(turn)]
            # The job book keeps each finished request's entry (and its stop handle) for the
            # operator's list: the handle must not keep the race, and with it the whole request.
            assert alive(Race) == before
            assert len(core.jobs.recent()) == 3


async def test_a_closed_reply_is_freed_without_the_collector() -> None:
    async with serving(keeps_alive) as server, client() as http:
        with collector_off():
            before = alive(aiohttp.ClientResponse), alive(httpx.Response)
            async with http.stream("POST", server.url + "/v1/chat/completions", json={"q": 1}) as response:
                assert await response.aread()
            await anyio.lowlevel.checkpoint()
            assert alive(aiohttp.ClientResponse) == before[0]  # aiohttp's side goes at the close
            assert response.is_closed and response.content
            # httpx's response and the stream its client wraps round ours point at each other:
            # once closed the cycle is cut, so the whole reply goes with its last reference.
            del response
            plain = await http.post(server.url + "/v1/chat/completions", json={"q": 2})  # read and closed by httpx
            assert plain.status_code == 200 and plain.content
            del plain
            assert (alive(aiohttp.ClientResponse), alive(httpx.Response)) == before
