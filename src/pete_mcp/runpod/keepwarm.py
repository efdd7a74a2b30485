"""Keep RunPod workers warm on a schedule, and say what that costs per day.

Why: a scaled-to-zero endpoint answers the first call of the morning after a cold start
(seconds to minutes). During business hours a warm-up control job every few seconds —
more often than the endpoint's idle timeout (RunPod's default: 5 s) — keeps workers
from scaling down, so callers never meet a cold start; outside those hours the endpoint
scales to zero and costs nothing. The price is the GPU's per-second rate for every kept
hour (RunPod bills idle-timeout time too), from shared/reference/runpod.md §6.3.

    schedule = KeepWarmSchedule.parse("mon-fri 08:00-18:00")
    cost_per_day("L4", schedule.hours_per_day, workers=1)   # → 6.84 (USD)
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup

from pete_mcp.core import ConfigError, PeteError

__all__ = [
    "GPU_PRICE_PER_S",
    "KeepWarm",
    "KeepWarmReport",
    "KeepWarmSchedule",
    "cost_per_day",
    "gpu_price_per_s",
]

log = logging.getLogger(__name__)

# RunPod serverless, USD per second, one rate for flex and active workers since 2026-05-13
# (runpod/docs snippets/serverless-gpu-pricing-table, read 2026-06-08).
GPU_PRICE_PER_S: dict[str, float] = {
    "A4000": 0.00016,
    "A4500": 0.00016,
    "RTX 4000": 0.00016,
    "L4": 0.00019,
    "A5000": 0.00019,
    "3090": 0.00019,
    "4090 PRO": 0.00031,
    "A6000": 0.00034,
    "A40": 0.00034,
    "L40": 0.00053,
    "L40S": 0.00053,
    "6000 Ada PRO": 0.00053,
    "A100": 0.00076,
    "6000s PRO": 0.00111,
    "H100 PRO": 0.00116,
    "H200 PRO": 0.00155,
    "B200": 0.00240,
}

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _key(gpu: str) -> str:
    return "".join(gpu.lower().split())


def gpu_price_per_s(gpu: str) -> float:
    """USD per second of one serverless worker on `gpu` (case and spaces ignored).

    Raises:
        ConfigError: the GPU is not in the price table.
    """
    prices = {_key(name): price for name, price in GPU_PRICE_PER_S.items()}
    try:
        return prices[_key(gpu)]
    except KeyError:
        raise ConfigError(f"no price for GPU {gpu!r}; known: {', '.join(GPU_PRICE_PER_S)}.") from None


def cost_per_day(gpu: str, hours: float, workers: int) -> float:
    """USD per day for keeping `workers` workers on `gpu` warm for `hours` hours of the day.

    Raises:
        ConfigError: unknown GPU, hours outside 0–24, or a negative worker count.
    """
    if not 0 <= hours <= 24:
        raise ConfigError(f"keep-warm hours per day must be between 0 and 24, got {hours}.")
    if workers < 0:
        raise ConfigError(f"keep-warm workers must be 0 or more, got {workers}.")
    return round(gpu_price_per_s(gpu) * 3600 * hours * workers, 2)


@dataclass(frozen=True, slots=True)
class KeepWarmSchedule:
    """Weekdays (0 = Monday) and a daily window [start, end) in local time; end 24:00 allowed."""

    days: frozenset[int]
    start_min: int
    end_min: int

    @classmethod
    def parse(cls, text: str) -> KeepWarmSchedule:
        """Parse `"mon-fri 08:00-18:00"`, `"mon,wed 09:00-12:00"`, `"daily 00:00-24:00"` or `"08:00-18:00"`.

        Raises:
            ConfigError: the text is not a schedule (the message shows the accepted forms).
        """
        parts = text.lower().split()
        try:
            if len(parts) == 1:
                days, window = frozenset(range(7)), parts[0]
            elif len(parts) == 2:
                days, window = _parse_days(parts[0]), parts[1]
            else:
                raise ValueError("expected `DAYS HH:MM-HH:MM`")
            start_text, end_text = window.split("-")
            start, end = _minutes(start_text), _minutes(end_text)
            if not start < end:
                raise ValueError("the window must end after it starts")
        except ValueError as exc:
            raise ConfigError(
                f"KEEPWARM_HOURS={text!r} is not a schedule ({exc}).",
                hint="Use e.g. `mon-fri 08:00-18:00`, `mon,wed,fri 09:00-17:00` or `daily 00:00-24:00`.",
            ) from None
        return cls(days, start, end)

    @property
    def hours_per_day(self) -> float:
        """Warm hours on a scheduled day."""
        return (self.end_min - self.start_min) / 60

    def active_at(self, when: dt.datetime) -> bool:
        minute = when.hour * 60 + when.minute
        return when.weekday() in self.days and self.start_min <= minute < self.end_min


def _parse_days(text: str) -> frozenset[int]:
    if text in ("daily", "every", "all"):
        return frozenset(range(7))
    days: set[int] = set()
    for item in text.split(","):
        if "-" in item:
            first, last = (_DAYS.index(d[:3]) for d in item.split("-"))
            days.update(range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)])
        else:
            days.add(_DAYS.index(item[:3]))
    return frozenset(days)


def _minutes(text: str) -> int:
    hours, minutes = (int(x) for x in text.split(":"))
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise ValueError(f"{text} is not a time of day")
    return hours * 60 + minutes


@dataclass(frozen=True, slots=True)
class KeepWarmReport:
    """What the schedule keeps warm and what it costs, for the dashboard and `pete doctor`."""

    schedule: str
    gpu: str
    workers: int
    hours_per_day: float
    days_per_week: int
    usd_per_day: float
    usd_per_month: float

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class KeepWarm:
    """Sends warm-up pings for the active model while the schedule is on; enter to run it.

    `warm` is the provider's warm-up (a RunPod control job); `model` names what to warm at
    each tick (the active model's RunPod name), so a model switch is followed at once.
    """

    def __init__(
        self,
        schedule: KeepWarmSchedule,
        *,
        schedule_text: str,
        warm: Callable[[str], Awaitable[float]],
        model: Callable[[], str | None],
        gpu: str,
        workers: int,
        interval_s: float,
        now: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        gpu_price_per_s(gpu)  # fail at start-up, not at the first report
        self.schedule = schedule
        self.schedule_text = schedule_text
        self._warm = warm
        self._model = model
        self.gpu = gpu
        self.workers = workers
        self.interval_s = interval_s
        self._now = now
        self.pings = 0
        self.failures = 0
        self._tg: TaskGroup | None = None

    def report(self) -> KeepWarmReport:
        per_day = cost_per_day(self.gpu, self.schedule.hours_per_day, self.workers)
        days = len(self.schedule.days)
        return KeepWarmReport(
            schedule=self.schedule_text,
            gpu=self.gpu,
            workers=self.workers,
            hours_per_day=self.schedule.hours_per_day,
            days_per_week=days,
            usd_per_day=per_day,
            usd_per_month=round(per_day * days * 365 / 7 / 12, 2),
        )

    async def tick(self) -> bool:
        """One scheduled step: ping `workers` times at once if the schedule is on. True when it pinged."""
        model = self._model()
        if model is None or not self.schedule.active_at(self._now()):
            return False
        async with anyio.create_task_group() as tg:
            for _ in range(self.workers):
                tg.start_soon(self._ping, model)
        return True

    async def _ping(self, model: str) -> None:
        try:
            await self._warm(model)
            self.pings += 1
        except PeteError as exc:
            self.failures += 1
            log.warning("keep-warm ping for %s failed: %s", model, exc)

    async def _run(self) -> None:
        while True:
            await self.tick()
            await anyio.sleep(self.interval_s)

    async def __aenter__(self) -> KeepWarm:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._run)
        log.info("keep-warm on: %s", self.report())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        tg, self._tg = self._tg, None
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(*exc)
