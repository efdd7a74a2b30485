"""Two gateway replicas on one PostgreSQL, in one process: one history per call, one active model,
one pager, and a database that goes away mid-call.

Each replica is a full core + VAPI face (its own pool, listener and leadership connection) over
the same database; the model is a scripted stand-in. Slack sits behind `httpx.MockTransport`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from pydantic import SecretStr

from pete_mcp.alerts import AlertBook, AlertEngine, Finding, SlackWebhookSink
from pete_mcp.app import build_app
from pete_mcp.core import ConfigError, Event, ModelRegistry, ModelSpec, Route, Settings
from pete_mcp.faces.dashboard import dashboard_face
from pete_mcp.local.stack import replica_settings
from pete_mcp.metrics import Metrics
from tests.support.postgres import PostgresServer
from tests.support.scripted import ScriptedProvider
from tests.support.vapi_stack import JAMIE_PROMPT, VapiStack, assert_vapi_stream, chat_body, vapi_stack

pytestmark = pytest.mark.anyio


def two_models() -> ModelRegistry:
    return ModelRegistry(
        {
            "jamie": ModelSpec("jamie", (Route("scripted", "small"),), 2048, "Jamie", JAMIE_PROMPT),
            "jamie-big": ModelSpec("jamie-big", (Route("scripted", "big"),), 2048, "Jamie, bigger", JAMIE_PROMPT),
        },
        "jamie",
    )


@asynccontextmanager
async def replicas(tmp_path: Path, url: str, count: int = 2) -> AsyncIterator[list[VapiStack]]:
    async with AsyncExitStack() as stack:
        out = []
        for i in range(count):
            provider = ScriptedProvider(words=("Rent", " is due", " on the first."))
            replica = await stack.enter_async_context(
                vapi_stack(tmp_path / f"r{i}", {"scripted": provider}, database_url=url, replica_id=f"r{i}")
            )
            replica.core.models = two_models()
            out.append(replica)
        yield out


def history(*turns: str) -> list[tuple[str, str]]:
    """A caller's side of the call so far, with Jamie's (scripted) answers in between."""
    said: list[tuple[str, str]] = []
    for i, text in enumerate(turns):
        if i:
            said.append(("assistant", "Rent is due on the first."))
        said.append(("user", text))
    return said


async def test_a_call_alternating_between_replicas_keeps_one_ordered_history(tmp_path: Path, postgres_url: str) -> None:
    questions = ["hello", "when is rent due", "can I pay online", "thanks", "one more thing", "bye"]
    async with replicas(tmp_path, postgres_url) as (a, b):
        for i in range(1, 5):  # turns 1-4 alternate A, B, A, B
            response = await (a if i % 2 else b).chat(chat_body(*history(*questions[:i])))
            assert response.status_code == 200 and assert_vapi_stream(response.text).content
        # Barge-in: the caller talks over Jamie, and VAPI's two requests land on both replicas at once.
        bodies = [chat_body(*history(*questions[:5])), chat_body(*history(*questions[:6]))]
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.chat, bodies[0])
            tg.start_soon(b.chat, bodies[1])
        stored = await a.core.store.thread("call-1")
    users = [m["content"] for m in stored if m["role"] == "user"]
    assert [m["seq"] for m in stored] == list(range(len(stored)))  # no gap, no duplicate seq
    assert users == questions  # every caller turn once, in order
    assert sum(m["role"] == "assistant" for m in stored) >= 5


async def test_a_switch_on_one_replica_is_in_force_on_the_other_within_a_second(
    tmp_path: Path, postgres_url: str
) -> None:
    async with replicas(tmp_path, postgres_url) as (a, b):
        async with b.core.events.subscribe() as seen:
            await a.core.switch_model("jamie-big", warm=False, by="test")
            with anyio.fail_after(1.0):
                async for event in seen:
                    if event.kind == "model.switched":
                        break
        assert b.core.active_alias == "jamie-big" and event.data["by"] == "replica"
        response = await b.chat(chat_body(("user", "hello"), call_id="call-2"))
        stored = await b.core.store.thread("call-2")
    assert response.status_code == 200
    assert [m["model"] for m in stored if m["role"] == "assistant"] == ["big"]


class Down:
    """A rule that finds the endpoint down while `down` is true."""

    name = "endpoint_down"
    for_s = 0.0

    def __init__(self) -> None:
        self.down = True

    def check(self, metrics: Metrics, now: float) -> list[Finding]:
        if not self.down:
            return []
        return [Finding("endpoint_down:runpod", self.name, "critical", "RunPod endpoint down", "x")]

    def observe(self, event: Event) -> None:
        return None


async def test_an_outage_pages_once_from_two_replicas_and_a_new_leader_does_not_page_it_again(
    tmp_path: Path, postgres_url: str
) -> None:
    posts: list[str] = []

    def slack(request: httpx.Request) -> httpx.Response:
        posts.append(request.content.decode())
        return httpx.Response(200, text="ok")

    async with (
        replicas(tmp_path, postgres_url) as stacks,
        httpx.AsyncClient(transport=httpx.MockTransport(slack)) as http,
    ):
        rule = Down()
        engines = [
            AlertEngine(
                [rule],
                [SlackWebhookSink(http, "https://hooks.slack.com/services/T/B/x")],
                s.core.metrics,
                leadership=s.core.store.leadership("alerts"),
                book=AlertBook(s.core.store),
            )
            for s in stacks
        ]
        for _ in range(3):  # both replicas evaluate, several times, concurrently
            async with anyio.create_task_group() as tg:
                for engine in engines:
                    tg.start_soon(engine.evaluate)
        leader, follower = sorted(engines, key=lambda e: not e.leading)
        assert len(posts) == 1 and leader.leading and not follower.leading
        await leader.leadership.release()  # the leader dies: its session, and so its lock, goes away
        await follower.evaluate()  # the next interval: the follower takes over, the outage carries on
        assert follower.leading and len(posts) == 1
        rule.down = False
        await follower.evaluate()
        await follower.leadership.release()
    assert len(posts) == 2 and "resolved" in posts[1].lower()


async def test_a_database_outage_mid_call_still_answers_and_writes_the_turn_when_it_returns(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.create_database()
    async with replicas(tmp_path, url, count=1) as (a,):
        first = await a.chat(chat_body(*history("hello")))
        assert first.status_code == 200
        drained = anyio.Event()
        a.core.store.spool.on_drained.append(drained.set)
        postgres_server.stop()
        try:
            during = await a.chat(chat_body(*history("hello", "when is rent due")))
            pending = a.core.store.spool_stats().pending
        finally:
            postgres_server.start()
        with anyio.fail_after(20):
            await drained.wait()  # the spool replays on its own once the server is back
        stored = [(m["role"], m["content"]) for m in await a.core.store.thread("call-1") if m["role"] != "system"]
        stats = a.core.store.spool_stats()
    assert during.status_code == 200 and assert_vapi_stream(during.text).content == "Rent is due on the first."
    assert pending > 0 and stats.lost == 0 and stats.replayed >= pending
    assert stored == [
        ("user", "hello"),
        ("assistant", "Rent is due on the first."),
        ("user", "when is rent due"),
        ("assistant", "Rent is due on the first."),
    ]


async def test_the_fleet_view_sums_every_replicas_rollups_and_live_stays_per_replica(
    tmp_path: Path, postgres_url: str
) -> None:
    async with replicas(tmp_path, postgres_url) as (a, b):
        await a.chat(chat_body(("user", "hello"), call_id="call-a"))
        for call in ("call-b1", "call-b2"):
            await b.chat(chat_body(("user", "hello"), call_id=call))
        for replica in (a, b):
            m = replica.core.metrics
            m.fold()
            await m.rollups.flush(replica.core.store, [], keep_after=0, replica=replica.core.settings.replica_name)
        app = build_app(a.core, faces=[dashboard_face(a.core, services=False)], manage_core=False)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8765"
        ) as client:
            fleet = (await client.get("/api/metrics", params={"scope": "fleet"})).json()
            live = (await client.get("/api/metrics")).json()
            bad = await client.get("/api/metrics", params={"scope": "galaxy"})
    assert fleet["totals"]["requests"] == 3 and live["totals"]["requests"] == 1
    assert {r["replica"]: r["requests"] for r in fleet["replicas"]} == {"r0": 1, "r1": 2}
    assert bad.status_code == 400 and "scope" in bad.json()["error"]["message"]


def test_up_with_replicas_needs_database_url_and_gives_each_replica_its_own_port_and_id() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        replica_settings(Settings(port=9000), 2)
    many = replica_settings(Settings(port=9000, database_url=SecretStr("postgresql://pete@127.0.0.1/pete")), 3)
    assert [(s.port, s.replica_name) for s in many] == [(9000, "replica-1"), (9001, "replica-2"), (9002, "replica-3")]
