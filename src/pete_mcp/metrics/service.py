"""The metrics service: the background work that keeps `core.metrics` current, started with the app.

- polls every provider's `health()` (RunPod's `/health` submits no job, so a scaled-to-zero
  GPU stays asleep) and publishes `provider.down` / `provider.up` on changes;
- follows core events: VAPI `call.started` / `call.ended` (live calls), `model.switched`,
  `deploy.*`, `failover.started`;
- reads conversation counts and the switch and deploy history from the store;
- loads this replica's persisted 24 h rollups at start, flushes them periodically and at shutdown;
- keeps the storage figures (engine, write spool: waiting, replayed, lost writes) current.

Enter `run_metrics_service(core)` once per process (the dashboard face's lifespan does; a
second entry is a no-op).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Protocol

import anyio
from anyio.abc import TaskStatus

from pete_mcp.core import Event, EventBus, ModelProvider, ProviderHealth, Settings, Store, Subscription

from ._recorder import Metrics
from ._records import DAY_S
from .snapshot import DeployEntry, StorageFigures, SwitchEntry

__all__ = ["ACTIVE_CONVERSATION_S", "MetricsHost", "MetricsService", "run_metrics_service"]

log = logging.getLogger(__name__)

ACTIVE_CONVERSATION_S = 900.0
STORAGE_INTERVAL_S = 1.0
HISTORY_ROWS = 10


class _HasProviders(Protocol):
    @property
    def providers(self) -> Mapping[str, ModelProvider]: ...


class MetricsHost(Protocol):
    """What the service reads from the gateway core (a protocol: metrics sits below the gateway)."""

    settings: Settings
    store: Store
    events: EventBus
    metrics: Metrics

    @property
    def router(self) -> _HasProviders: ...

    @property
    def active_alias(self) -> str: ...


def _call_id(data: dict[str, object]) -> str | None:
    for key in ("call_id", "id", "conversation_id"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


class MetricsService:
    def __init__(self, core: MetricsHost) -> None:
        self.core = core
        self.metrics = core.metrics
        self.poll_interval_s = core.settings.metrics_poll_interval_s
        self.flush_interval_s = core.settings.metrics_flush_interval_s
        self._refresh_wanted = anyio.Event()
        self._health_ok: dict[str, bool] = {}

    # --- start-up and shutdown ---------------------------------------------------------------
    async def load(self) -> None:
        errors = await self.metrics.rollups.load(
            self.core.store, since=time.time() - DAY_S, replica=self.core.settings.replica_name
        )
        self.metrics.restore(errors)
        self.metrics.set_active_model(self.core.active_alias)
        await self.update_storage()
        await self.refresh_store_view()

    async def flush(self) -> None:
        m = self.metrics
        m.fold()
        keep_after = time.time() - DAY_S
        m.rollups.prune(keep_after)
        errors, m.unflushed_errors = m.unflushed_errors, []
        try:
            await m.rollups.flush(
                self.core.store, errors, keep_after=keep_after, replica=self.core.settings.replica_name
            )
        except Exception:
            m.unflushed_errors[:0] = errors  # try again next time
            raise
        m.changed()  # the 24 h window moved on

    # --- the loops -----------------------------------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every loop; `task_status.started()` once events are being followed (none is missed)."""
        async with self.core.events.subscribe() as sub, anyio.create_task_group() as tg:
            tg.start_soon(self._forever, "event listener", lambda: self.follow_events(sub), 0.0)
            task_status.started()
            tg.start_soon(self._forever, "health poll", self.poll_health, self.poll_interval_s)
            tg.start_soon(self._forever, "store view", self._refresh_when_asked, 0.0)
            tg.start_soon(self._forever, "rollup flush", self._flush_later, 0.0)
            tg.start_soon(self._forever, "storage figures", self.update_storage, STORAGE_INTERVAL_S)

    async def _forever(self, name: str, step: Callable[[], Awaitable[None]], pause_s: float) -> None:
        while True:
            try:
                await step()
            except Exception:
                log.exception("metrics service: %s failed; retrying", name)
                await anyio.sleep(max(pause_s, 1.0))
                continue
            if pause_s:
                await anyio.sleep(pause_s)

    async def _flush_later(self) -> None:
        await anyio.sleep(self.flush_interval_s)
        await self.flush()

    async def _refresh_when_asked(self) -> None:
        with anyio.move_on_after(self.poll_interval_s):
            await self._refresh_wanted.wait()
        self._refresh_wanted = anyio.Event()
        await self.refresh_store_view()

    async def follow_events(self, sub: Subscription) -> None:
        async for event in sub:
            self.observe(event)

    def observe(self, event: Event) -> None:
        data = event.data
        if event.kind == "call.started" and (call := _call_id(data)):
            self.metrics.call_started(call)
            self._refresh_wanted.set()  # a call is a conversation
        elif event.kind == "call.ended" and (call := _call_id(data)):
            self.metrics.call_ended(call)
            self._refresh_wanted.set()
        elif event.kind == "model.switched":
            self.metrics.set_active_model(str(data.get("active", self.core.active_alias)))
            self._refresh_wanted.set()
        elif event.kind.startswith("deploy."):
            self._refresh_wanted.set()
        elif event.kind == "failover.started" and data.get("mode") != "hedge":
            self.metrics.count_fallback(str(data.get("provider", "?")), str(data.get("to", "?")))

    async def poll_health(self) -> None:
        """Ask every provider for its health once, concurrently, each bounded by a timeout."""
        async with anyio.create_task_group() as tg:
            for name, provider in self.core.router.providers.items():
                tg.start_soon(self._check, name, provider)

    async def _check(self, name: str, provider: ModelProvider) -> None:
        health = ProviderHealth(False, f"{name} health check timed out")
        with anyio.move_on_after(min(max(self.poll_interval_s, 1.0), 10.0)):
            try:
                health = await provider.health()
            except Exception as exc:
                health = ProviderHealth(False, f"{name} health check failed: {type(exc).__name__}")
        self.metrics.set_provider_health(name, health)
        before = self._health_ok.get(name)
        self._health_ok[name] = health.ok
        if before is not None and before != health.ok:
            kind = "provider.up" if health.ok else "provider.down"
            self.core.events.publish(kind, provider=name, detail=health.detail, source="health")

    async def update_storage(self) -> None:
        stats = self.core.store.spool_stats()
        before = self.metrics.storage
        lost_at = before.last_loss_at if before else None
        if stats.lost > (before.lost_writes if before else 0):
            lost_at = time.time()
        self.metrics.set_storage(
            StorageFigures(
                engine=self.core.store.engine.name,
                replica=self.core.settings.replica_name,
                pending_writes=stats.pending,
                deferred_writes=stats.deferred,
                replayed_writes=stats.replayed,
                lost_writes=stats.lost,
                last_loss_at=lost_at,
            )
        )

    async def refresh_store_view(self) -> None:
        store = self.core.store
        since = time.time() - ACTIVE_CONVERSATION_S
        counts = await store.query(
            "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN updated_at >= ? THEN 1 ELSE 0 END), 0) AS active "
            "FROM conversations",
            (since,),
        )
        switches = await store.query(
            "SELECT at, from_model, to_model, warmup_s, by, ok FROM switches ORDER BY id DESC LIMIT ?", (HISTORY_ROWS,)
        )
        deploys = await store.query(
            "SELECT at, image, previous_image, status, detail, kind FROM deploys ORDER BY id DESC LIMIT ?",
            (HISTORY_ROWS,),
        )
        self.metrics.set_store_view(
            active_conversations=int(counts[0]["active"]),
            conversations_total=int(counts[0]["total"]),
            switches=[SwitchEntry(**{**row, "ok": bool(row["ok"])}) for row in switches],
            deploys=[DeployEntry(**row) for row in deploys],
        )


@asynccontextmanager
async def run_metrics_service(core: MetricsHost) -> AsyncIterator[MetricsService | None]:
    """Run the service while the context is open; the final flush happens on the way out.

    Yields None (and starts nothing) when a service already runs for this core.
    """
    if core.metrics.service_running:
        yield None
        return
    service = MetricsService(core)
    core.metrics.service_running = True
    try:
        await service.load()
        async with anyio.create_task_group() as tg:
            await tg.start(service.run)
            try:
                yield service
            finally:
                tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await service.flush()
    finally:
        core.metrics.service_running = False
