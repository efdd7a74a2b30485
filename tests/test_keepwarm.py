"""Keep-warm: the cost per day from RunPod's price table, the schedule, and the ping loop."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pete_mcp.core.errors import ConfigError
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import build_core
from pete_mcp.runpod.keepwarm import KeepWarm, KeepWarmSchedule, cost_per_day, gpu_price_per_s
from tests.support.paced_provider import PacedProvider
from tests.support.polling import eventually


def test_cost_per_day_is_the_per_second_price_times_the_warm_seconds() -> None:
    assert cost_per_day("L4", 10, 1) == pytest.approx(0.00019 * 36_000, abs=0.01) == 6.84
    assert cost_per_day("H100 PRO", 24, 2) == pytest.approx(0.00116 * 86_400 * 2, abs=0.01)
    assert cost_per_day("a4000", 8, 3) == pytest.approx(0.00016 * 3600 * 8 * 3, abs=0.01)
    assert cost_per_day("L4", 0, 5) == 0.0
    # An always-on 24 GB worker is the reference's "≈ $499/month".
    assert round(cost_per_day("L4", 24, 1) * 730 / 24) == 499


@pytest.mark.parametrize(("gpu", "hours", "workers"), [("K80", 1, 1), ("L4", 25, 1), ("L4", -1, 1), ("L4", 1, -1)])
def test_impossible_cost_questions_are_config_errors(gpu: str, hours: float, workers: int) -> None:
    with pytest.raises(ConfigError):
        cost_per_day(gpu, hours, workers)


def test_gpu_names_ignore_case_and_spaces() -> None:
    assert gpu_price_per_s("h100pro") == gpu_price_per_s("H100 PRO") == 0.00116


def test_a_business_hours_schedule_is_on_only_on_weekdays_in_the_window() -> None:
    schedule = KeepWarmSchedule.parse("mon-fri 08:00-18:00")
    monday = dt.datetime(2026, 6, 8)  # a Monday
    assert schedule.hours_per_day == 10
    assert schedule.active_at(monday.replace(hour=8))
    assert schedule.active_at(monday.replace(hour=17, minute=59))
    assert not schedule.active_at(monday.replace(hour=18))
    assert not schedule.active_at(monday.replace(hour=7, minute=59))
    assert not schedule.active_at(monday + dt.timedelta(days=5, hours=12))  # Saturday noon


def test_other_schedule_forms() -> None:
    assert KeepWarmSchedule.parse("daily 00:00-24:00").hours_per_day == 24
    assert KeepWarmSchedule.parse("09:30-12:00").days == frozenset(range(7))
    assert KeepWarmSchedule.parse("mon,wed,fri 09:00-17:00").days == frozenset({0, 2, 4})
    assert KeepWarmSchedule.parse("fri-mon 10:00-11:00").days == frozenset({4, 5, 6, 0})


@pytest.mark.parametrize("text", ["", "whenever", "mon-fri 18:00-08:00", "mon-fri 8-18", "xyz 08:00-09:00"])
def test_a_bad_schedule_says_which_forms_work(text: str) -> None:
    with pytest.raises(ConfigError, match="mon-fri 08:00-18:00"):
        KeepWarmSchedule.parse(text)


@pytest.mark.anyio
async def test_a_tick_pings_once_per_worker_only_inside_the_window() -> None:
    warmed: list[str] = []
    clock = [dt.datetime(2026, 6, 8, 12, 0)]

    async def warm(model: str) -> float:
        warmed.append(model)
        return 0.0

    keepwarm = KeepWarm(
        KeepWarmSchedule.parse("mon-fri 08:00-18:00"),
        schedule_text="mon-fri 08:00-18:00",
        warm=warm,
        model=lambda: "peteollama:jamie-fixed",
        gpu="L4",
        workers=2,
        interval_s=4,
        now=lambda: clock[0],
    )
    assert await keepwarm.tick()
    clock[0] = clock[0].replace(hour=20)
    assert not await keepwarm.tick()
    assert warmed == ["peteollama:jamie-fixed"] * 2
    report = keepwarm.report()
    assert (report.usd_per_day, report.days_per_week, report.hours_per_day) == (13.68, 5, 10)
    assert report.usd_per_month == round(13.68 * 5 * 365 / 7 / 12, 2)


@pytest.mark.anyio
async def test_the_core_runs_keep_warm_for_the_active_models_runpod_route(tmp_path: Path) -> None:
    runpod = PacedProvider("runpod")
    registry = ModelRegistry({"jamie": ModelSpec("jamie", (Route("runpod", "peteollama:jamie-fixed"),))}, "jamie")
    settings = Settings(data_dir=tmp_path, keepwarm_hours="daily 00:00-24:00", keepwarm_interval_s=0.02)
    async with build_core(settings, providers={"runpod": runpod}, registry=registry) as core:
        assert core.keepwarm is not None
        await eventually(lambda: len(runpod.warmed) >= 3)
        assert core.keepwarm.report().usd_per_day == cost_per_day("L4", 24, 1)
    assert set(runpod.warmed) == {"peteollama:jamie-fixed"}


@pytest.mark.anyio
async def test_no_schedule_means_no_keep_warm(tmp_path: Path) -> None:
    async with build_core(Settings(data_dir=tmp_path), providers={"runpod": PacedProvider("runpod")}) as core:
        assert core.keepwarm is None
