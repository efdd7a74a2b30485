"""Everything one local endpoint is made of, composed once and handed to its routes.

`PodState.create` wires the board's callbacks (stop a job on its worker, send webhooks) to
the worker registry and the webhook sender. Routes read this object and nothing else.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from ._board import JobBoard
from ._config import LocalPodConfig
from ._faults import Faults
from ._job import Job
from ._supervisor import Supervisor
from ._webhooks import WebhookSender
from ._wirelog import WireLog
from ._workers import WorkerRegistry

__all__ = ["PodState"]


@dataclass
class PodState:
    config: LocalPodConfig
    board: JobBoard
    workers: WorkerRegistry
    supervisor: Supervisor
    faults: Faults
    webhooks: WebhookSender
    wire: WireLog
    closing: bool = False

    @classmethod
    def create(
        cls,
        config: LocalPodConfig,
        *,
        http: httpx.AsyncClient,
        run_dir: Path,
        parent_env: Mapping[str, str] | None = None,
    ) -> PodState:
        board = JobBoard(config)
        workers = WorkerRegistry(board)
        faults = Faults(random.Random(config.fault_seed))
        webhooks = WebhookSender(http, attempts=config.webhook_attempts, retry_delay_s=config.webhook_retry_delay_s)
        supervisor = Supervisor(config, board, workers, faults, run_dir=run_dir, parent_env=parent_env, http=http)

        def send_webhook(job: Job) -> None:
            if job.webhook:
                webhooks.send(job.webhook, job.status_body())

        board.on_stop = workers.request_stop
        board.on_finished = send_webhook
        return cls(
            config=config,
            board=board,
            workers=workers,
            supervisor=supervisor,
            faults=faults,
            webhooks=webhooks,
            wire=WireLog(enabled=config.record_worker_wire),
        )

    def begin_closing(self) -> None:
        """Make every held long-poll answer now (the endpoint is shutting down)."""
        self.closing = True
        self.board.queue_changed.notify()
        for worker in self.workers.all():
            worker.stop_wakeup.notify()
        for job in (*self.board.queued(), *self.board.running()):
            job.changed.notify()
