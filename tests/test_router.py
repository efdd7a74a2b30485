"""The router's decisions: failover, TTFT hedging, cancellation of the loser, breakers, events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.errors import ConfigError, InputError, ProviderError, ProviderUnavailable
from pete_mcp.core.events import Event, EventBus
from pete_mcp.core.models import ModelSpec, Route
from pete_mcp.core.provider import Completion, JobStarted, StreamEvent, TextDelta
from pete_mcp.routing.breaker import BreakerPolicy, BreakerState
from pete_mcp.routing.hedging import HedgeBudget, HedgePolicy
from pete_mcp.routing.router import Router
from tests.support.paced_provider import PacedProvider
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

SPEC = ModelSpec("jamie", (Route("primary", "jamie-fixed"), Route("fallback", "llama")), 2048)
HELLO = [Message(role="user", content="hi")]


@asynccontextmanager
async def running(
    *providers: PacedProvider, hedge: HedgePolicy | None = None, breaker: BreakerPolicy | None = None
) -> AsyncIterator[tuple[Router, list[Event]]]:
    events = EventBus()
    seen: list[Event] = []
    router = Router({p.name: p for p in providers}, events, hedge=hedge, breaker_policy=breaker)
    async with router, events.subscribe() as sub, anyio.create_task_group() as tg:

        async def collect() -> None:
            async for event in sub:
                seen.append(event)

        tg.start_soon(collect)
        yield router, seen
        await anyio.sleep(0.01)  # let the collector drain
        tg.cancel_scope.cancel()


async def reply(router: Router, spec: ModelSpec = SPEC) -> tuple[list[StreamEvent], float | None]:
    """All events of one reply, and the seconds until its first token."""
    started = anyio.current_time()
    first: float | None = None
    out: list[StreamEvent] = []
    async for event in router.stream(spec, HELLO, ChatOptions(max_tokens=8)):
        if isinstance(event, TextDelta) and first is None:
            first = anyio.current_time() - started
        out.append(event)
    return out, first


def completion(events: Sequence[StreamEvent]) -> Completion:
    assert isinstance(events[-1], Completion)
    return events[-1]


def kinds(seen: list[Event]) -> list[tuple[str, Any]]:
    return [(e.kind, e.data.get("mode")) for e in seen]


async def test_a_slow_first_token_is_hedged_and_the_loser_is_closed() -> None:
    primary = PacedProvider("primary", delays=[10.0], words=("cold",))
    fallback = PacedProvider("fallback", words=("warm", " reply"))
    async with running(primary, fallback, hedge=HedgePolicy(fixed_after_s=0.2)) as (router, seen):
        with anyio.fail_after(5):
            events, ttft = await reply(router)
        await eventually(lambda: primary.closed_early == ["primary-0"])
    done = completion(events)
    assert (done.provider, done.model, done.text) == ("fallback", "llama", "warm reply")
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["warm", " reply"]
    assert [e.job_id for e in events if isinstance(e, JobStarted)] == ["fallback-0"]
    assert ttft is not None and 0.2 <= ttft < 1.0
    assert kinds(seen) == [("failover.started", "hedge"), ("failover.ended", "hedge")]
    assert seen[-1].data["provider"] == "fallback"
    assert (router.stats.hedges, router.stats.hedge_wins, router.stats.extra_requests) == (1, 1, 1)


async def test_a_first_token_before_the_hedge_delay_sends_no_second_request() -> None:
    primary = PacedProvider("primary", delays=[0.05])
    fallback = PacedProvider("fallback")
    async with running(primary, fallback, hedge=HedgePolicy(fixed_after_s=0.5)) as (router, seen):
        events, _ = await reply(router)
    assert completion(events).provider == "primary"
    assert fallback.calls == 0
    assert seen == []


async def test_when_the_primary_wins_the_race_the_hedge_is_cancelled_and_never_mixed_in() -> None:
    primary = PacedProvider("primary", delays=[0.3], words=("A1", "A2", "A3"), token_gap_s=0.05)
    fallback = PacedProvider("fallback", delays=[2.0], words=("B1", "B2"))
    async with running(primary, fallback, hedge=HedgePolicy(fixed_after_s=0.1)) as (router, seen):
        events, _ = await reply(router)
        await eventually(lambda: fallback.closed_early == ["fallback-0"])
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["A1", "A2", "A3"]
    assert completion(events).provider == "primary"
    assert seen[-1].kind == "failover.ended" and seen[-1].data["provider"] == "primary"
    assert router.stats.hedge_wins == 0


async def test_an_error_before_the_first_token_fails_over_at_once() -> None:
    primary = PacedProvider("primary", errors=[ProviderUnavailable("RunPod answered 503", provider="primary")])
    fallback = PacedProvider("fallback")
    async with running(primary, fallback, hedge=HedgePolicy(fixed_after_s=5.0)) as (router, seen):
        with anyio.fail_after(2):
            events, _ = await reply(router)
    assert completion(events).provider == "fallback"
    assert kinds(seen) == [("failover.started", "failover"), ("failover.ended", "failover")]
    assert "503" in seen[0].data["reason"]


async def test_an_error_after_the_first_token_is_raised_not_continued_elsewhere() -> None:
    primary = PacedProvider("primary", words=("half", " a", " reply"), token_gap_s=0.01)

    async def broken_stream(
        model: str, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[StreamEvent]:
        yield TextDelta("half")
        raise ProviderError("worker died", provider="primary")

    primary.stream = broken_stream  # type: ignore[method-assign]
    fallback = PacedProvider("fallback")
    async with running(primary, fallback, hedge=HedgePolicy(fixed_after_s=5.0)) as (router, _):
        received: list[str] = []
        with pytest.raises(ProviderError, match="worker died"):
            async for event in router.stream(SPEC, HELLO, ChatOptions()):
                if isinstance(event, TextDelta):
                    received.append(event.text)
    assert received == ["half"]
    assert fallback.calls == 0


async def test_a_bad_request_is_not_retried_on_another_provider() -> None:
    primary = PacedProvider("primary", errors=[InputError("max_tokens too large")])
    fallback = PacedProvider("fallback")
    async with running(primary, fallback) as (router, _):
        with pytest.raises(InputError):
            await reply(router)
    assert fallback.calls == 0


async def test_without_hedge_budget_a_primary_answering_before_the_rescue_point_is_waited_for() -> None:
    primary = PacedProvider("primary", delays=[0.4])
    fallback = PacedProvider("fallback")
    hedge = HedgePolicy(fixed_after_s=0.1, rescue_multiple=10.0, budget=HedgeBudget(ratio=0.0, burst=0.0))
    async with running(primary, fallback, hedge=hedge) as (router, _):
        events, _ = await reply(router)
    assert completion(events).provider == "primary"
    assert fallback.calls == 0
    assert (hedge.budget.denied, router.stats.rescues) == (1, 0)


async def test_without_hedge_budget_a_primary_silent_past_the_rescue_point_is_rescued() -> None:
    primary = PacedProvider("primary", delays=[30.0])
    fallback = PacedProvider("fallback")
    hedge = HedgePolicy(fixed_after_s=0.05, rescue_multiple=2.0, budget=HedgeBudget(ratio=0.0, burst=0.0))
    async with running(primary, fallback, hedge=hedge) as (router, _):
        events, _ = await reply(router)
    assert completion(events).provider == "fallback"
    assert (hedge.budget.denied, hedge.budget.rescued, hedge.budget.spent) == (1, 1, 0)
    assert (router.stats.hedges, router.stats.rescues, router.stats.extra_requests) == (1, 1, 1)
    assert len(primary.closed_early) == 1  # the stuck primary is cancelled once the rescue answers


async def test_with_rescues_off_the_budget_alone_decides() -> None:
    primary = PacedProvider("primary", delays=[0.4])
    fallback = PacedProvider("fallback")
    hedge = HedgePolicy(fixed_after_s=0.05, rescue_multiple=None, budget=HedgeBudget(ratio=0.0, burst=0.0))
    async with running(primary, fallback, hedge=hedge) as (router, _):
        events, _ = await reply(router)
    assert completion(events).provider == "primary"
    assert fallback.calls == 0
    assert (hedge.budget.denied, router.stats.rescues) == (1, 0)


async def test_hedging_off_never_starts_a_second_request() -> None:
    primary = PacedProvider("primary", delays=[0.3])
    fallback = PacedProvider("fallback")
    async with running(primary, fallback, hedge=HedgePolicy(enabled=False, fixed_after_s=0.01)) as (router, _):
        events, _ = await reply(router)
    assert completion(events).provider == "primary" and fallback.calls == 0


async def test_every_provider_failing_names_each_cause() -> None:
    primary = PacedProvider("primary", errors=[ProviderUnavailable("RunPod 503", provider="primary")])
    fallback = PacedProvider("fallback", errors=[ProviderUnavailable("OpenRouter 429", provider="fallback")])
    async with running(primary, fallback) as (router, seen):
        with pytest.raises(ProviderUnavailable, match=r"RunPod 503.*OpenRouter 429"):
            await reply(router)
    assert seen[-1].kind == "failover.ended" and seen[-1].data["outcome"] == "failed"


async def test_an_open_breaker_skips_the_provider_and_a_probe_brings_it_back() -> None:
    down = ProviderUnavailable("connect refused", provider="primary")
    primary = PacedProvider("primary", errors=[down, down])
    fallback = PacedProvider("fallback")
    breaker = BreakerPolicy(failure_threshold=2, cooldown_s=0.3)
    async with running(primary, fallback, breaker=breaker, hedge=HedgePolicy(fixed_after_s=5)) as (router, seen):
        for _ in range(4):
            events, _ = await reply(router)
            assert completion(events).provider == "fallback"
        assert primary.calls == 2  # skipped while open
        assert router.breakers["primary"].state is BreakerState.OPEN
        await anyio.sleep(0.35)
        events, _ = await reply(router)  # the half-open probe succeeds
        assert completion(events).provider == "primary"
        assert router.breakers["primary"].state is BreakerState.CLOSED
    provider_events = [(e.kind, e.data["provider"]) for e in seen if e.kind.startswith("provider.")]
    assert provider_events == [("provider.down", "primary"), ("provider.up", "primary")]


async def test_when_every_breaker_is_open_a_request_is_still_tried() -> None:
    primary = PacedProvider("primary", errors=[ProviderUnavailable("down", provider="primary")])
    fallback = PacedProvider("fallback", errors=[ProviderUnavailable("down", provider="fallback")])
    async with running(primary, fallback, breaker=BreakerPolicy(failure_threshold=1, cooldown_s=60)) as (router, _):
        with pytest.raises(ProviderUnavailable):
            await reply(router)
        events, _ = await reply(router)  # both open now; the one closest to its probe is tried
    assert completion(events).provider in ("primary", "fallback")


async def test_a_caller_leaving_mid_reply_closes_the_provider_stream() -> None:
    primary = PacedProvider("primary", words=("a", "b", "c", "d"), token_gap_s=0.05)
    async with running(primary, hedge=HedgePolicy(fixed_after_s=5)) as (router, _):
        spec = ModelSpec("solo", (Route("primary", "m"),), 2048)
        stream = router.stream(spec, HELLO, ChatOptions())
        async for event in stream:
            if isinstance(event, TextDelta):
                break
        await stream.aclose()  # type: ignore[attr-defined]
        await eventually(lambda: primary.closed_early == ["primary-0"])


async def test_a_model_without_a_configured_provider_is_a_config_error() -> None:
    async with running(PacedProvider("primary")) as (router, _):
        spec = ModelSpec("x", (Route("openrouter", "m"),), 2048)
        with pytest.raises(ConfigError, match="no configured provider serves 'x'"):
            await reply(router, spec)


async def test_the_learned_hedge_delay_follows_recent_first_tokens() -> None:
    primary = PacedProvider("primary", delays=[0.0] * 20 + [3.0])
    fallback = PacedProvider("fallback")
    hedge = HedgePolicy(floor_s=0.1, ceiling_s=1.0)
    hedge.tracker = type(hedge.tracker)(min_samples=20)
    async with running(primary, fallback, hedge=hedge) as (router, _):
        for _ in range(20):
            await reply(router)
        assert hedge.delay_s("primary", "jamie-fixed") == 0.1  # the floor: recent p95 is ~0
        with anyio.fail_after(2):
            events, ttft = await reply(router)
    assert completion(events).provider == "fallback"
    assert ttft is not None and ttft < 0.6


async def test_a_cancelled_losers_wait_is_learned_as_a_lower_bound_of_its_ttft() -> None:
    primary = PacedProvider("primary", delays=[10.0])
    fallback = PacedProvider("fallback")
    hedge = HedgePolicy(fixed_after_s=0.2)
    hedge.tracker = type(hedge.tracker)(min_samples=1)
    async with running(primary, fallback, hedge=hedge) as (router, _):
        await reply(router)
    learned = hedge.tracker.p95("primary", "jamie-fixed")
    assert learned is not None and 0.2 <= learned < 1.0  # not the 10 s it never showed, not nothing


async def test_every_provider_is_asked_for_the_registered_context_window() -> None:
    primary = PacedProvider("primary", errors=[ProviderUnavailable("down", provider="primary")])
    fallback = PacedProvider("fallback")
    async with running(primary, fallback) as (router, _):
        await reply(router)
        async for _ in router.stream(SPEC, HELLO, ChatOptions(num_ctx=512)):
            pass
        async for _ in router.stream(SPEC, HELLO, ChatOptions(num_ctx=1_000_000)):
            pass
    assert [o.num_ctx for o in primary.options_seen[:1] + fallback.options_seen[:1]] == [2048, 2048]
    assert [o.num_ctx for o in primary.options_seen[1:]] == [512, 2048]  # smaller kept, larger cut
