"""Hedge delay (recent p95, clamped) and the hedge budget (token bucket)."""

from __future__ import annotations

from pete_mcp.routing.hedging import HedgeBudget, HedgePolicy, TtftTracker


def test_p95_needs_enough_samples_then_follows_the_slow_tail() -> None:
    tracker = TtftTracker(min_samples=20)
    for _ in range(19):
        tracker.record("runpod", "m", 0.1)
    assert tracker.p95("runpod", "m") is None
    tracker.record("runpod", "m", 0.1)
    assert tracker.p95("runpod", "m") == 0.1
    for _ in range(5):
        tracker.record("runpod", "m", 2.0)
    assert tracker.p95("runpod", "m") == 2.0  # 5 of 25 are slow: more than 5 %
    assert tracker.p95("openrouter", "m") is None


def test_the_delay_is_the_p95_clamped_to_floor_and_ceiling() -> None:
    policy = HedgePolicy(floor_s=0.3, ceiling_s=1.0, initial_s=0.8, tracker=TtftTracker(min_samples=3))
    assert policy.delay_s("runpod", "m") == 0.8  # no history yet
    for ttft in (0.5, 0.5, 0.5):
        policy.tracker.record("runpod", "m", ttft)
    assert policy.delay_s("runpod", "m") == 0.5
    for _ in range(3):
        policy.tracker.record("fast", "m", 0.01)
        policy.tracker.record("slow", "m", 12.0)
    assert policy.delay_s("fast", "m") == 0.3
    assert policy.delay_s("slow", "m") == 1.0


def test_a_configured_delay_wins_over_history() -> None:
    policy = HedgePolicy(fixed_after_s=0.25)
    for _ in range(30):
        policy.tracker.record("runpod", "m", 5.0)
    assert policy.delay_s("runpod", "m") == 0.25


def test_the_budget_bounds_hedges_to_ratio_times_requests_plus_burst() -> None:
    budget = HedgeBudget(ratio=0.2, burst=3)
    spent = 0
    for _ in range(100):
        budget.earn()
        if budget.try_spend():
            spent += 1
    assert spent <= 0.2 * 100 + 3
    assert spent >= 0.2 * 100 - 1
    assert budget.denied == 100 - spent


def test_an_idle_budget_saves_up_no_more_than_the_burst() -> None:
    budget = HedgeBudget(ratio=1.0, burst=2)
    for _ in range(50):
        budget.earn()
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]


def test_the_rescue_point_is_a_multiple_of_the_unclamped_p95_and_off_when_unset() -> None:
    policy = HedgePolicy(floor_s=0.3, ceiling_s=1.0, initial_s=0.8, rescue_multiple=2.0)
    assert policy.rescue_s("runpod", "m") == 1.6  # no history: twice the initial delay
    for _ in range(30):
        policy.tracker.record("runpod", "m", 0.4)
    assert policy.rescue_s("runpod", "m") == 0.8  # follows the learned p95
    for _ in range(30):
        policy.tracker.record("runpod", "m", 3.0)  # the primary got slow across the board
    assert policy.delay_s("runpod", "m") == 1.0  # the hedge delay stops at its ceiling ...
    assert policy.rescue_s("runpod", "m") == 6.0  # ... the rescue point does not: no rescue of every reply
    assert HedgePolicy(fixed_after_s=0.5, rescue_multiple=0.5).rescue_s("runpod", "m") == 0.5  # never before it
    assert HedgePolicy(rescue_multiple=None).rescue_s("runpod", "m") == float("inf")


def test_quantiles_are_nearest_rank_over_recent_samples() -> None:
    tracker = TtftTracker(keep=100, min_samples=10)
    for value in range(1, 101):
        tracker.record("runpod", "m", value / 100)
    assert tracker.quantile("runpod", "m", 0.5) == 0.5
    assert tracker.quantile("runpod", "m", 0.99) == 0.99
    tracker.record("runpod", "m", 5.0)  # the oldest (0.01) drops out, the cache is refreshed
    assert tracker.quantile("runpod", "m", 0.99) == 1.0
    assert tracker.quantile("runpod", "m", 1.0) == 5.0
