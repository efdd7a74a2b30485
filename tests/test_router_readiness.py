"""Cold-start-aware routing: the endpoint's free live state, and the first-token and stall watchdogs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import anyio
import httpx
import pytest

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.events import EventBus
from pete_mcp.core.models import ModelSpec, Route
from pete_mcp.core.provider import (
    Completion,
    Readiness,
    ReportsReadiness,
    StreamEvent,
    TextDelta,
    WarmsForCalls,
    capable,
)
from pete_mcp.routing.hedging import HedgePolicy
from pete_mcp.routing.providers.runpod import RunPodProvider
from pete_mcp.routing.router import Router, Watchdogs
from pete_mcp.runpod import EndpointHealth, EndpointState, RunPodClient, readiness_of
from tests.support.paced_provider import PacedProvider
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

SPEC = ModelSpec("jamie", (Route("primary", "jamie-fixed"), Route("fallback", "llama")), 2048)
HELLO = [Message(role="user", content="hi")]


@dataclass
class EndpointProvider(PacedProvider):
    """A provider that reports its endpoint's state, as RunPod's does from /health."""

    state: Readiness = "warm"
    warm_requests: list[str] = field(default_factory=list)

    def readiness(self) -> Readiness:
        return self.state

    def warm_soon(self, model: str) -> None:
        self.warm_requests.append(model)


@dataclass
class StallingProvider(PacedProvider):
    """Sends its first words, then goes silent for good."""

    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        self.calls += 1
        for word in self.words:
            yield TextDelta(word)
        await anyio.sleep(3600)


async def reply(router: Router) -> tuple[list[StreamEvent], float]:
    started = anyio.current_time()
    first = -1.0
    out: list[StreamEvent] = []
    with anyio.fail_after(10):
        async for event in router.stream(SPEC, HELLO, ChatOptions(max_tokens=8)):
            if isinstance(event, TextDelta) and first < 0:
                first = anyio.current_time() - started
            out.append(event)
    return out, first


def texts(events: list[StreamEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


async def test_a_cold_endpoint_is_skipped_for_a_warm_fallback_and_warmed_for_the_next_turn() -> None:
    primary = EndpointProvider("primary", state="cold")
    fallback = PacedProvider("fallback", words=("warm",))
    async with Router({"primary": primary, "fallback": fallback}, EventBus(), hedge=HedgePolicy()) as router:
        events, ttft = await reply(router)
    assert texts(events) == ["warm"] and primary.calls == 0
    assert primary.warm_requests == ["jamie-fixed"]
    assert router.stats.cold_skips == 1 and router.stats.extra_requests == 0
    assert ttft < 0.5


async def test_a_cold_endpoint_still_answers_when_the_fallback_fails() -> None:
    from pete_mcp.core.errors import ProviderUnavailable

    primary = EndpointProvider("primary", state="cold", words=("late",))
    fallback = PacedProvider("fallback", errors=[ProviderUnavailable("down", provider="fallback")])
    async with Router({"primary": primary, "fallback": fallback}, EventBus()) as router:
        events, _ = await reply(router)
    assert texts(events) == ["late"]


async def test_with_no_idle_worker_the_hedge_goes_at_once_not_after_the_learned_delay() -> None:
    primary = EndpointProvider("primary", state="busy", delays=[5.0])
    fallback = PacedProvider("fallback", words=("now",))
    async with Router(
        {"primary": primary, "fallback": fallback}, EventBus(), hedge=HedgePolicy(fixed_after_s=2.0)
    ) as r:
        events, ttft = await reply(r)
        await eventually(lambda: primary.closed_early == ["primary-0"])  # the loser is cancelled
    assert texts(events) == ["now"] and ttft < 0.5
    assert (r.stats.instant_hedges, r.stats.hedges, r.stats.cancelled) == (1, 1, 1)


async def test_a_warm_endpoint_waits_the_hedge_delay_as_before() -> None:
    primary = EndpointProvider("primary", state="warm", delays=[0.1])
    fallback = PacedProvider("fallback")
    async with Router(
        {"primary": primary, "fallback": fallback}, EventBus(), hedge=HedgePolicy(fixed_after_s=1.0)
    ) as r:
        await reply(r)
    assert fallback.calls == 0


async def test_the_first_token_watchdog_gives_a_silent_attempt_up_for_the_next_route() -> None:
    primary = PacedProvider("primary", delays=[60.0])
    fallback = PacedProvider("fallback", words=("here",))
    hedge = HedgePolicy(enabled=False)
    watchdogs = Watchdogs(first_token_s=0.3)
    async with Router({"primary": primary, "fallback": fallback}, EventBus(), hedge=hedge, watchdogs=watchdogs) as r:
        events, ttft = await reply(r)
        await eventually(lambda: primary.closed_early == ["primary-0"])
    assert texts(events) == ["here"] and 0.3 <= ttft < 1.5
    assert r.stats.first_token_timeouts == 1


async def test_a_stalled_reply_is_continued_by_the_next_route_from_what_was_said() -> None:
    primary = StallingProvider("primary", words=("The plumber", " comes"))
    fallback = PacedProvider("fallback", words=(" on Monday.",))
    seen: list[Sequence[Message]] = []
    original = fallback.stream

    def recording(model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        seen.append(messages)
        return original(model, messages, options)

    fallback.stream = recording  # type: ignore[method-assign]
    watchdogs = Watchdogs(stall_s=0.3)
    async with Router({"primary": primary, "fallback": fallback}, EventBus(), watchdogs=watchdogs) as router:
        events, _ = await reply(router)
    assert texts(events) == ["The plumber", " comes", " on Monday."]
    done = events[-1]
    assert isinstance(done, Completion) and done.text == "The plumber comes on Monday."
    assert seen[0][-1] == Message(role="assistant", content="The plumber comes")
    assert router.stats.stalls_bridged == 1


async def test_the_endpoint_state_is_read_from_health_and_polled_only_while_calls_are_active() -> None:
    answers = {"idle": 0, "running": 0, "initializing": 1}
    jobs = {"inProgress": 0, "inQueue": 0}
    polls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        polls.append(request.url.path)
        return httpx.Response(200, json={"jobs": jobs, "workers": answers})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = RunPodClient(http, base_url="http://runpod/v2", endpoint_id="ep", api_key="k")
        state = EndpointState(client.health, interval_s=0.05, active_window_s=0.3)
        async with anyio.create_task_group() as tg:
            tg.start_soon(state.run)
            await anyio.sleep(0.2)
            assert polls == []  # nobody asked: no poll
            assert state.readiness() == "unknown"
            await eventually(lambda: state.readiness() == "cold")
            answers.update(running=1)
            jobs.update(inProgress=1)  # its one slot is taken
            await eventually(lambda: state.readiness() == "busy")
            answers.update(idle=1)
            await eventually(lambda: state.readiness() == "warm")
            await anyio.sleep(0.5)  # no one asks any more: polling stops
            settled = len(polls)
            await anyio.sleep(0.3)
            assert len(polls) == settled
            tg.cancel_scope.cancel()
    assert set(polls) == {"/v2/ep/health"}


def _health(*, idle: int = 0, running: int = 0, in_progress: int = 0, in_queue: int = 0) -> EndpointHealth:
    return EndpointHealth.model_validate(
        {
            "jobs": {"inProgress": in_progress, "inQueue": in_queue},
            "workers": {"idle": idle, "running": running, "initializing": 0},
        }
    )


def test_a_running_worker_with_a_free_slot_and_no_queue_reads_warm_not_busy() -> None:
    # Four slots per worker: one worker running one job still starts the next at once.
    assert readiness_of(_health(running=1, in_progress=1), slots_per_worker=4) == "warm"
    assert readiness_of(_health(running=1, in_progress=4), slots_per_worker=4) == "busy"  # slots full
    assert readiness_of(_health(running=2, in_progress=2, in_queue=1), slots_per_worker=4) == "busy"  # jobs wait
    assert readiness_of(_health(running=1, in_progress=1), slots_per_worker=1) == "busy"
    assert readiness_of(_health(), slots_per_worker=4) == "cold"


def test_capable_answers_as_isinstance_does_for_the_capability_protocols() -> None:
    """The router asks per request, so the answer is cached per class: it must still be isinstance's."""
    reporting, plain = EndpointProvider("primary"), PacedProvider("fallback")
    for provider in (reporting, plain, reporting, plain):  # twice: the cached answer too
        for capability in (ReportsReadiness, WarmsForCalls):
            assert capable(provider, capability) is isinstance(provider, capability)
    assert capable(reporting, ReportsReadiness) and not capable(plain, ReportsReadiness)
    assert issubclass(RunPodProvider, WarmsForCalls) and issubclass(RunPodProvider, ReportsReadiness)
