"""Read a RunPod endpoint's queue and workers out of a provider's `health()` figures.

`ProviderHealth.figures` is a flat mapping; the RunPod provider reports RunPod's `/health`
counters there (`jobs.inQueue`, `workers.idle`, …). Key spellings are accepted loosely
(`in_queue`, `inQueue`, `jobs_in_queue`; `workers_idle`, `idle`, …) so the dashboard does not
break when the provider renames a figure. `/health` submits no job, so polling it never
wakes a scaled-to-zero GPU.
"""

from __future__ import annotations

from collections.abc import Mapping

from pete_mcp.core import ProviderHealth

from .snapshot import RunPodFigures

__all__ = ["WORKER_STATES", "runpod_figures"]

WORKER_STATES = ("idle", "initializing", "ready", "running", "throttled", "unhealthy")

_QUEUE_KEYS = ("in_queue", "inQueue", "jobs_in_queue", "jobs_inQueue", "queue", "queued")
_PROGRESS_KEYS = ("in_progress", "inProgress", "jobs_in_progress", "jobs_inProgress")


def _number(figures: Mapping[str, object], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = figures.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
    return None


def _serving(workers: dict[str, int]) -> int:
    """Workers that can take a job now. RunPod's `ready` may overlap `idle` and `running`
    (the local endpoint counts an idle worker in both), so take the larger reading, not the sum."""
    return max(workers.get("idle", 0) + workers.get("running", 0), workers.get("ready", 0))


def runpod_figures(name: str, health: ProviderHealth, *, at: float) -> RunPodFigures | None:
    """The endpoint's figures, or None when `name` is no RunPod endpoint.

    A provider counts as an endpoint when it is named `runpod` or reports a job queue.
    """
    figures = health.figures
    in_queue = _number(figures, _QUEUE_KEYS)
    if in_queue is None and name != "runpod":
        return None
    workers: dict[str, int] = {}
    for state in WORKER_STATES:
        n = _number(figures, (f"workers_{state}", f"workers.{state}", state))
        if n is not None:
            workers[state] = n
    reachable = in_queue is not None or bool(workers)
    return RunPodFigures(
        provider=name,
        live=health.ok,
        reachable=reachable,
        detail=health.detail,
        checked_at=at,
        in_queue=in_queue or 0,
        in_progress=_number(figures, _PROGRESS_KEYS) or 0,
        workers=workers,
        serving_workers=_serving(workers),
    )
