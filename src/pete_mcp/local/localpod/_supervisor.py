"""The worker supervisor: starts, scales, replaces and stops real worker processes.

What RunPod's platform does for an endpoint, on one machine: keep `min_workers` running;
start another worker (up to `max_workers`) when a job has waited `queue_delay_s` (the
QUEUE_DELAY scaler) or at once when no worker exists; stop a worker idle for
`idle_timeout_s` above the minimum; replace a worker that crashed, hung (no heartbeat) or
asked to stop (`stopPod`). Jobs of a worker that dies are requeued once, then fail (the
board decides). A new worker first sits out the simulated cold start, so the wait shows in
its first job's `delayTime`. A worker that keeps dying before it ever asks for a job is
restarted with exponential backoff instead of in a tight loop.

On a load-balancing endpoint a worker is its own HTTP server (`python -m gpu_handler --http`
on a port of its own); its `/ping` is asked every `lb_ping_interval_s` while it initialises
(204) and every ping interval once ready (200), which is its heartbeat. Another worker starts
when requests wait with none ready, or when requests per live worker exceed
`lb_requests_per_worker` (RunPod's request-count scaler).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Mapping
from pathlib import Path

import httpx

from ._board import JobBoard
from ._config import LocalPodConfig
from ._errors import NotRunning
from ._faults import Faults
from ._spawn import free_port, lb_worker_environment, signal_group, spawn_worker_process, worker_environment
from ._workers import Worker, WorkerExit, WorkerPhase, WorkerRegistry

__all__ = ["Supervisor"]

logger = logging.getLogger(__name__)

# What a worker image that crashes during start runs instead of the worker (fault injection):
# a real process that logs a traceback and exits 1 before it ever asks for a job.
_CRASH_ON_START = (
    "import sys; print('gpu_handler: starting (localpod fault: crash_on_start)', flush=True); "
    "raise RuntimeError('the worker crashed during start (injected fault crash_on_start)')"
)


class Supervisor:
    """Owns the worker processes; `reconcile()` is called on every housekeeping tick."""

    def __init__(
        self,
        config: LocalPodConfig,
        board: JobBoard,
        workers: WorkerRegistry,
        faults: Faults,
        *,
        run_dir: Path,
        parent_env: Mapping[str, str] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = config
        self._http = http
        self._board = board
        self._workers = workers
        self._faults = faults
        self._run_dir = run_dir
        self._parent_env = dict(os.environ if parent_env is None else parent_env)
        self._endpoint_url: str | None = None
        self._lifecycles: dict[str, asyncio.Task[None]] = {}
        self._early_deaths = 0
        self._next_start_at = 0.0
        self._closing = False
        self.exits: deque[WorkerExit] = deque(maxlen=20)  # newest last

    def start(self, endpoint_url: str) -> None:
        """Begin supervising; `endpoint_url` is what workers call (`http://127.0.0.1:P/v2/EP`)."""
        self._endpoint_url = endpoint_url
        self.reconcile()

    # --- the control loop

    def reconcile(self) -> None:
        if self._endpoint_url is None or self._closing:
            return
        now = self._board.now()
        self._check_heartbeats(now)
        self._track_idle(now)
        self._scale_up(now)
        self._scale_down(now)

    def _check_heartbeats(self, now: float) -> None:
        interval_s = self._config.ping_interval_ms / 1000
        for worker in self._workers.live():
            if worker.last_ping_at is None:
                continue
            silent_s = now - worker.last_ping_at
            if silent_s > self._config.heartbeat_misses * interval_s:
                self.kill(worker, f"stopped sending heartbeats ({silent_s:.0f} s)")
            elif silent_s > 2 * interval_s:
                worker.unhealthy_reason = worker.unhealthy_reason or "heartbeat late"
            elif worker.unhealthy_reason == "heartbeat late":
                worker.unhealthy_reason = None

    def _track_idle(self, now: float) -> None:
        busy = self._workers.busy_ids()
        for worker in self._workers.live():
            if worker.phase is not WorkerPhase.READY:
                continue
            if worker.id in busy:
                worker.idle_since = None
            elif worker.idle_since is None:
                worker.idle_since = now

    def _scale_up(self, now: float) -> None:
        live = self._workers.live()
        if now < self._next_start_at or len(live) >= self._config.max_workers:
            return
        if len(live) < self._config.min_workers:
            self.start_worker()
            return
        if self._config.load_balancer:
            self._scale_up_load_balancer(live)
            return
        waiting = [job for job in self._board.queued() if not job.policy.low_priority and job.ready_at <= now]
        if not waiting:
            return
        if not live:
            self.start_worker()  # scale from zero at once
            return
        starting = sum(1 for w in live if w.phase is WorkerPhase.INITIALIZING)
        overdue = sum(1 for job in waiting if now - job.queued_at >= self._config.queue_delay_s)
        if overdue > starting:
            self.start_worker()

    def _scale_up_load_balancer(self, live: list[Worker]) -> None:
        waiting = self._workers.lb_waiting
        starting = sum(1 for w in live if w.phase is WorkerPhase.INITIALIZING)
        demand = waiting + sum(w.inflight for w in live)
        if (waiting and not live) or (not starting and demand > len(live) * self._config.lb_requests_per_worker):
            self.start_worker()

    def _scale_down(self, now: float) -> None:
        live = self._workers.live()
        if len(live) <= self._config.min_workers:
            return
        for worker in live:
            idle_since = worker.idle_since
            idle_long = idle_since is not None and now - idle_since >= self._config.idle_timeout_s
            if worker.phase is WorkerPhase.READY and idle_long:
                self.retire(worker, "idle timeout")
                return

    # --- one worker's life

    @property
    def early_deaths(self) -> int:
        """Workers in a row that died before asking for a job (reset by one that got ready)."""
        return self._early_deaths

    def start_worker(self) -> Worker:
        worker = self._workers.create()
        worker.restarts = self._early_deaths
        self._lifecycles[worker.id] = asyncio.get_running_loop().create_task(self._live(worker))
        logger.info("Starting worker %s.", worker.id)
        return worker

    async def _live(self, worker: Worker) -> None:
        try:
            cold_start_s = self._config.cold_start_s + self._faults.cold_start_extra_s()
            await self._sit_out(worker, cold_start_s)
            if worker.accepting and not self._closing:
                await self._run_process(worker)
        except Exception:
            logger.exception("Worker %s could not be run.", worker.id)
        finally:
            if worker.pid is not None:
                signal_group(worker.pid, signal.SIGKILL)  # the SDK's heartbeat child, if it outlived the worker
            self._lifecycles.pop(worker.id, None)
            self._on_gone(worker)

    async def _sit_out(self, worker: Worker, delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay_s
        while worker.accepting and not self._closing and loop.time() < deadline:
            await worker.stop_wakeup.wait(deadline - loop.time())

    async def _run_process(self, worker: Worker) -> None:
        assert self._endpoint_url is not None
        home = self._run_dir / "home" / worker.id
        home.mkdir(parents=True, exist_ok=True)
        worker.log_path = self._run_dir / "logs" / f"{worker.id}.log"
        worker.crashes_on_start = self._faults.start_crashes()
        argv = (sys.executable, "-c", _CRASH_ON_START) if worker.crashes_on_start else self._config.worker_command
        if self._config.load_balancer and not worker.crashes_on_start:
            argv = self._config.lb_worker_command
            worker.http_port = free_port()
            env = lb_worker_environment(
                self._config, worker_id=worker.id, port=worker.http_port, home=home, parent_env=self._parent_env
            )
        else:
            env = worker_environment(
                self._config,
                worker_id=worker.id,
                secret=worker.secret,
                endpoint_url=self._endpoint_url,
                home=home,
                parent_env=self._parent_env,
            )
        process = await spawn_worker_process(argv, env=env, cwd=self._config.worker_cwd, log_path=worker.log_path)
        worker.pid = process.pid
        if worker.phase is WorkerPhase.STOPPING:  # retired while the process was being started
            signal_group(process.pid, signal.SIGTERM)
        pinging = asyncio.get_running_loop().create_task(self._ping(worker)) if worker.http_port else None
        try:
            worker.exit_code = await process.wait()
        finally:
            if pinging is not None:
                pinging.cancel()

    async def _ping(self, worker: Worker) -> None:
        """Ask a load-balancing worker's `/ping` (RunPod's health check): 200 ready, 204 initialising."""
        assert self._http is not None, "a load-balancing endpoint needs the supervisor's HTTP client"
        url = f"http://127.0.0.1:{worker.http_port}/ping"
        while worker.live and not self._closing:
            try:
                status: int | None = (await self._http.get(url, timeout=2.0)).status_code
            except httpx.HTTPError:
                status = None  # not listening yet, or stuck: the heartbeat check decides
            if status is not None:
                worker.last_ping_at = self._board.now()
            if status == 200:
                self._workers.mark_polling(worker)
                if worker.unhealthy_reason is not None and worker.unhealthy_reason.startswith("/ping"):
                    worker.unhealthy_reason = None
            elif status not in (None, 204):
                worker.unhealthy_reason = f"/ping answered {status}"
            ready = worker.phase is WorkerPhase.READY
            interval_s = self._config.ping_interval_ms / 1000 if ready else self._config.lb_ping_interval_s
            await worker.stop_wakeup.wait(interval_s)

    def _on_gone(self, worker: Worker) -> None:
        intended = worker.phase is WorkerPhase.STOPPING
        self._workers.remove(worker)
        reason = worker.exit_reason or f"exited with code {worker.exit_code}"
        self._board.worker_lost(worker.id, reason)
        self.exits.append(
            WorkerExit(
                id=worker.id,
                started_at=worker.created_at,
                exited_at=self._board.now(),
                exit_code=worker.exit_code,
                reason=reason,
                before_ready=worker.initialized_at is None,
                intended=intended or self._closing,
                restarts=worker.restarts,
                jobs_done=worker.jobs_done,
                last_model=worker.last_model,
                log_path=worker.log_path,
            )
        )
        if intended or self._closing:
            logger.info("Worker %s stopped (%s).", worker.id, reason)
            return
        if worker.initialized_at is None:
            self._early_deaths += 1
            backoff_s = min(self._config.restart_backoff_max_s, 0.5 * 2 ** (self._early_deaths - 1))
            self._next_start_at = self._board.now() + backoff_s
            logger.warning(
                "Worker %s %s before asking for a job; next start in %.1f s. Last log lines:\n%s",
                worker.id,
                reason,
                backoff_s,
                _tail(worker.log_path),
            )
        else:
            self._early_deaths = 0
            logger.warning("Worker %s %s; it will be replaced.", worker.id, reason)
        self.reconcile()

    # --- stopping workers

    def retire(self, worker: Worker, reason: str) -> None:
        """Stop a worker gracefully (SIGTERM, then SIGKILL after `stop_grace_s`)."""
        if not worker.live:
            return
        worker.phase = WorkerPhase.STOPPING
        worker.exit_reason = worker.exit_reason or f"was stopped ({reason})"
        if worker.pid is not None:
            signal_group(worker.pid, signal.SIGTERM)
            asyncio.get_running_loop().call_later(self._config.stop_grace_s, self._force_kill, worker)
        elif worker.id not in self._lifecycles:  # a worker with no process of ours
            self._on_gone(worker)
        # Its held job-take and job-stop polls answer now instead of at their timeout.
        worker.stop_wakeup.notify()
        self._board.queue_changed.notify()

    def kill(self, worker: Worker, reason: str) -> None:
        """SIGKILL the worker's whole process group, as if its machine died."""
        worker.exit_reason = worker.exit_reason or reason
        if worker.pid is not None and worker.phase is not WorkerPhase.GONE:
            signal_group(worker.pid, signal.SIGKILL)
        elif worker.id in self._lifecycles:
            self.retire(worker, reason)  # still in its cold start: it never gets a process
        else:
            self._on_gone(worker)

    def kill_worker(self, *, job_id: str | None = None, worker_id: str | None = None) -> Worker:
        """Kill the worker running `job_id`, or the worker `worker_id` (fault injection).

        Raises:
            NotRunning: no such job running, or no such worker.
        """
        if job_id is not None:
            job = self._board.get(job_id)
            worker_id = job.worker_id if job is not None and not job.status.terminal else None
            if worker_id is None:
                raise NotRunning(f"Job {job_id} is not running on any worker.")
        worker = self._workers.get(worker_id) if worker_id is not None else None
        if worker is None:
            raise NotRunning(f"No worker {worker_id!r} to kill.")
        self.kill(worker, "was killed (fault injection)")
        return worker

    def _force_kill(self, worker: Worker) -> None:
        if worker.phase is not WorkerPhase.GONE and worker.pid is not None:
            logger.warning("Worker %s ignored SIGTERM; killing it.", worker.id)
            signal_group(worker.pid, signal.SIGKILL)

    async def close(self) -> None:
        """Stop every worker and wait until their processes are gone."""
        self._closing = True
        for worker in self._workers.all():
            self.retire(worker, "endpoint stopping")
        pending = list(self._lifecycles.values())
        if pending:
            _, still_running = await asyncio.wait(pending, timeout=self._config.stop_grace_s + 2)
            for worker in self._workers.all():
                if worker.pid is not None:
                    signal_group(worker.pid, signal.SIGKILL)
            if still_running:
                await asyncio.wait(still_running, timeout=5)


def _tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return "(no log)"
    with path.open("rb") as log:
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - 4096))
        text = log.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])
