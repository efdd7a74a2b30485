"""The per-provider circuit breaker: when it opens, how a half-open probe closes it."""

from __future__ import annotations

from pete_mcp.routing.breaker import BreakerPolicy, BreakerState, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **policy: float) -> tuple[CircuitBreaker, list[tuple[str, str, str]]]:
    changes: list[tuple[str, str, str]] = []
    b = CircuitBreaker(
        "runpod",
        BreakerPolicy(**policy),  # type: ignore[arg-type]
        clock=clock,
        on_change=lambda name, old, new, reason: changes.append((name, old.value, new.value)),
    )
    return b, changes


def test_consecutive_failures_open_the_breaker_and_requests_are_refused() -> None:
    clock = Clock()
    b, changes = breaker(clock, failure_threshold=3, cooldown_s=10)
    for _ in range(2):
        b.record_failure("503")
    assert b.allow() and b.state is BreakerState.CLOSED
    b.record_failure("503")
    assert b.state is BreakerState.OPEN
    assert not b.allow()
    assert b.retry_in_s() == 10
    assert changes == [("runpod", "closed", "open")]


def test_a_success_resets_the_consecutive_count() -> None:
    b, _ = breaker(Clock(), failure_threshold=3, min_requests=100)
    for _ in range(10):
        b.record_failure("x")
        b.record_failure("x")
        b.record_success()
    assert b.state is BreakerState.CLOSED


def test_a_high_error_rate_opens_it_even_without_a_streak() -> None:
    b, _ = breaker(Clock(), failure_threshold=100, error_rate=0.5, min_requests=10, window_s=60)
    for _ in range(4):
        b.record_success()
        b.record_failure("x")
    b.record_success()
    assert b.state is BreakerState.CLOSED  # 4 of 9: too few outcomes to judge
    b.record_failure("x")
    assert b.state is BreakerState.OPEN  # 5 of 10 failed


def test_the_error_rate_only_counts_the_window() -> None:
    clock = Clock()
    b, _ = breaker(clock, failure_threshold=100, error_rate=0.5, min_requests=10, window_s=60)
    for _ in range(6):
        b.record_failure("old")
    clock.now += 120
    for _ in range(5):
        b.record_success()
    b.record_failure("new")
    assert b.state is BreakerState.CLOSED


def test_after_the_cool_down_one_probe_goes_through_and_its_success_closes_the_breaker() -> None:
    clock = Clock()
    b, changes = breaker(clock, failure_threshold=1, cooldown_s=5)
    b.record_failure("down")
    clock.now += 4.9
    assert not b.allow()
    clock.now += 0.2
    assert b.allow()  # the probe
    assert b.state is BreakerState.HALF_OPEN
    assert not b.allow()  # only one probe at a time
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.allow()
    assert changes == [
        ("runpod", "closed", "open"),
        ("runpod", "open", "half_open"),
        ("runpod", "half_open", "closed"),
    ]


def test_a_failed_probe_reopens_it_for_another_cool_down() -> None:
    clock = Clock()
    b, _ = breaker(clock, failure_threshold=1, cooldown_s=5)
    b.record_failure("down")
    clock.now += 5
    assert b.allow()
    b.record_failure("still down")
    assert b.state is BreakerState.OPEN
    assert b.retry_in_s() == 5
    assert b.last_reason == "still down"


def test_a_cancelled_probe_frees_the_slot_for_the_next_one() -> None:
    clock = Clock()
    b, _ = breaker(clock, failure_threshold=1, cooldown_s=5)
    b.record_failure("down")
    clock.now += 5
    assert b.allow()
    b.record_cancelled()
    assert b.allow()
