"""Roll a new worker image onto the RunPod endpoint, follow the rollout, and undo it.

Why here and not in a face: a deploy is recorded (the store's `deploys` table, which the
dashboard and `pete://metrics/live` read) and announced (`deploy.progress` events, which
alerts and MCP subscribers follow) the same way whoever starts it. The procedure is
shared/reference/runpod.md §4.3: PATCH a pinned image → poll releases until the rollout is
no longer in progress → no stale workers left. Rollback PATCHes the image the last deploy
replaced.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from pete_mcp.core import EventBus, InputError, NotFound, PeteError, Store
from pete_mcp.core.eval_scores import QualityGate
from pete_mcp.gateway import Core
from pete_mcp.runpod import RunPodRest

__all__ = [
    "DeployRecord",
    "Deployer",
    "RolloutState",
    "check_image_pinned",
    "deploy_gate",
    "gated_deployer",
    "recent_images",
]

# `repo[:tag][@sha256:digest]`; the tag is what follows the last ':' after the last '/'.
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_TAG = re.compile(r":([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$")

ProgressFn = Callable[["RolloutState"], Awaitable[None]]
GateFn = Callable[[], Awaitable[None]]  # raises QualityGateRefused to stop a deploy


def check_image_pinned(image: str) -> None:
    """Accept `repo:tag` (not `latest`) or `repo@sha256:<digest>`.

    Raises:
        InputError: the image is empty, untagged, or `:latest` (workers cache it, so a
            new push would never roll out).
    """
    image = image.strip()
    if not image or any(c.isspace() for c in image):
        raise InputError(f"{image!r} is not an image reference; pass e.g. registry/worker:1.4.2.")
    if _DIGEST.search(image):
        return
    name = image.rsplit("/", 1)[-1]
    tag = _TAG.search(name)
    if tag is None:
        raise InputError(
            f"image {image!r} has no tag: pin a version (registry/worker:1.4.2) or a digest (@sha256:...)."
        )
    if tag.group(1) == "latest":
        raise InputError(f"image {image!r} uses :latest, which workers cache; pin a version tag or an @sha256 digest.")


@dataclass(frozen=True, slots=True)
class RolloutState:
    endpoint_version: int | None
    in_progress: bool
    workers_on_latest: int
    workers_total: int
    percent_on_latest: float
    stale_workers: int
    workers: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """Every active worker runs the newest release (also true with no workers at all)."""
        return (not self.in_progress or self.workers_total == 0) and self.stale_workers == 0


@dataclass(frozen=True, slots=True)
class DeployRecord:
    id: int
    at: float
    kind: str
    image: str
    previous_image: str | None
    status: str
    detail: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DeployRecord:
        return cls(
            id=int(row["id"]),
            at=float(row["at"]),
            kind=str(row["kind"]),
            image=str(row["image"]),
            previous_image=row["previous_image"],
            status=str(row["status"]),
            detail=str(row["detail"] or ""),
        )


class Deployer:
    """Deploys to one endpoint through `RunPodRest`, recording each in `store`."""

    def __init__(
        self,
        rest: RunPodRest,
        store: Store,
        events: EventBus,
        *,
        poll_interval_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        gate: GateFn | None = None,
    ) -> None:
        self.rest = rest
        self.gate = gate
        self.store = store
        self.events = events
        self.poll_interval_s = poll_interval_s
        self._clock = clock

    async def start(self, image: str, *, env: Mapping[str, str] | None = None, kind: str = "deploy") -> DeployRecord:
        """Record the deploy, then `PATCH` the endpoint with the image (and env, which replaces the whole env).

        Raises:
            InputError: the image is not pinned (deploys only; a rollback restores what was there).
            QualityGateRefused: the eval-score gate refused (deploys only; nothing is recorded or sent).
            AuthError, NotFound, ProviderUnavailable, DeployError: RunPod refused or failed.
        """
        if kind == "deploy":
            check_image_pinned(image)
            if self.gate is not None:
                await self.gate()
        current = await self.rest.get_endpoint()
        previous = current.get("image")
        detail = f"env keys: {', '.join(sorted(env))}" if env else ""
        record_id = await self.store.insert(
            "INSERT INTO deploys(at, image, previous_image, status, detail, kind) VALUES (?, ?, ?, ?, ?, ?) "
            "RETURNING id",
            (time.time(), image, previous, "rolling_out", detail, kind),
        )
        changes: dict[str, Any] = {"image": image}
        if env is not None:
            changes["env"] = dict(env)
        try:
            await self.rest.update_endpoint(changes)
        except PeteError as exc:
            await self._set_status(record_id, "failed", str(exc))
            self._announce(record_id, kind, image, "failed", detail=str(exc))
            raise
        self._announce(record_id, kind, image, "rolling_out")
        return DeployRecord(record_id, time.time(), kind, image, previous, "rolling_out", detail)

    async def follow(
        self, record: DeployRecord, *, timeout_s: float, on_progress: ProgressFn | None = None
    ) -> RolloutState:
        """Poll the rollout until every worker runs the new release, or `timeout_s` passes.

        On success the record becomes `done`; past the deadline it stays `rolling_out`
        (RunPod keeps rolling; `rollout()` reports later progress).
        """
        deadline = self._clock() + timeout_s
        last_percent: float | None = None
        while True:
            state = await self.rollout()
            if on_progress is not None:
                await on_progress(state)
            if state.percent_on_latest != last_percent:
                last_percent = state.percent_on_latest
                self._announce(record.id, record.kind, record.image, "rolling_out", percent=state.percent_on_latest)
            if state.finished:
                await self._set_status(record.id, "done", f"endpoint version {state.endpoint_version}")
                self._announce(record.id, record.kind, record.image, "done", percent=100.0)
                return state
            if self._clock() + self.poll_interval_s > deadline:
                return state
            await anyio.sleep(self.poll_interval_s)

    async def rollout(self) -> RolloutState:
        """One reading of the rollout: releases, plus the workers still on an old version."""
        releases = await self.rest.releases()
        workers = await self.rest.workers()
        return RolloutState(
            endpoint_version=releases.endpoint_version or workers.endpoint_version,
            in_progress=releases.rollout.in_progress,
            workers_on_latest=releases.rollout.workers_on_latest,
            workers_total=releases.rollout.workers_total,
            percent_on_latest=releases.rollout.percent_on_latest,
            stale_workers=len(workers.stale),
            workers=dict(workers.summary),
        )

    async def settle(self, state: RolloutState) -> int:
        """Mark deploys still `rolling_out` as `done` once a reading shows the rollout finished; how many."""
        if not state.finished:
            return 0
        rows = await self.store.query("SELECT * FROM deploys WHERE status = 'rolling_out'")
        for row in rows:
            record = DeployRecord.from_row(row)
            await self._set_status(record.id, "done", f"endpoint version {state.endpoint_version}")
            self._announce(record.id, record.kind, record.image, "done", percent=100.0)
        return len(rows)

    async def rollback_target(self) -> DeployRecord:
        """The most recent deploy that has not been undone.

        Raises:
            NotFound: Pete has recorded no deploy that replaced a known image.
        """
        rows = await self.store.query(
            "SELECT * FROM deploys WHERE kind = 'deploy' AND status IN ('rolling_out', 'done') "
            "AND previous_image IS NOT NULL ORDER BY id DESC LIMIT 1"
        )
        if not rows:
            raise NotFound("there is no deploy to roll back.", hint="Only deploys made through Pete are recorded.")
        return DeployRecord.from_row(rows[0])

    async def rollback(self) -> tuple[DeployRecord, DeployRecord]:
        """Restore the image the last deploy replaced; returns (the undone deploy, the rollback)."""
        target = await self.rollback_target()
        assert target.previous_image is not None
        record = await self.start(target.previous_image, kind="rollback")
        await self._set_status(target.id, "rolled_back", f"rolled back by deploy #{record.id}")
        return target, record

    async def history(self, limit: int = 10) -> list[DeployRecord]:
        rows = await self.store.query("SELECT * FROM deploys ORDER BY id DESC LIMIT ?", (limit,))
        return [DeployRecord.from_row(r) for r in rows]

    async def _set_status(self, record_id: int, status: str, detail: str) -> None:
        await self.store.execute("UPDATE deploys SET status = ?, detail = ? WHERE id = ?", (status, detail, record_id))

    def _announce(self, record_id: int, kind: str, image: str, status: str, **extra: Any) -> None:
        self.events.publish("deploy.progress", id=record_id, action=kind, image=image, status=status, **extra)


async def recent_images(store: Store, *, prefix: str = "", limit: int = 20) -> list[str]:
    """Images deployed before (or replaced by a deploy) that start with `prefix`, newest first."""
    rows = await store.query(
        "SELECT image, MAX(id) AS last FROM ("
        " SELECT image, id FROM deploys UNION ALL"
        " SELECT previous_image AS image, id FROM deploys WHERE previous_image IS NOT NULL"
        ") AS seen WHERE substr(image, 1, ?) = ? GROUP BY image ORDER BY last DESC LIMIT ?",
        (len(prefix), prefix, limit),
    )
    return [str(row["image"]) for row in rows]


def deploy_gate(core: Core) -> GateFn:
    """The eval-score gate for deploys from `core`: the deploy models' latest scores (EVAL_MIN_SCORE)."""

    async def check() -> None:
        gate = QualityGate.from_settings(core.settings, core.store)
        models = gate.deploy_models(core.settings, core.active_alias)
        await gate.check(models, action=f"deploy (gated on {', '.join(models)})")

    return check


def gated_deployer(core: Core, rest: RunPodRest) -> Deployer:
    """A `Deployer` for `core`'s store and events whose deploys pass the eval-score gate first."""
    return Deployer(rest, core.store, core.events, gate=deploy_gate(core))
