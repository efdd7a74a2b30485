"""The local RunPod endpoint's knobs, with RunPod's documented defaults.

One frozen dataclass so a test, `pete localpod` and `pete up` build the same endpoint from
explicit values; `from_settings` maps Pete's settings onto it. Defaults follow
`shared/reference/runpod.md` (§1.5 wait, §1.8 retention and limits, §6.2 defaults).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ._errors import InvalidConfig

__all__ = ["DEFAULT_LB_WORKER_COMMAND", "DEFAULT_WORKER_COMMAND", "LocalPodConfig"]

DEFAULT_WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "gpu_handler")
# A load-balancing endpoint's worker is its own HTTP server (`/ping`, `/v1/chat/completions`).
DEFAULT_LB_WORKER_COMMAND: tuple[str, ...] = (*DEFAULT_WORKER_COMMAND, "--http")
_MIB = 1024 * 1024
_SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class LocalPodConfig:
    """Everything that shapes one local endpoint. Times in seconds unless the name says ms."""

    endpoint_id: str = "local"
    api_key: str = field(default="local-dev-key", repr=False)
    host: str = "127.0.0.1"
    port: int = 0

    # --- workers
    worker_command: tuple[str, ...] = DEFAULT_WORKER_COMMAND
    worker_env: Mapping[str, str] = field(default_factory=dict)
    worker_cwd: Path | None = None
    run_dir: Path | None = None  # worker logs and HOMEs; None → a temporary directory
    min_workers: int = 1
    max_workers: int = 2
    idle_timeout_s: float = 60.0
    cold_start_s: float = 0.0
    queue_delay_s: float = 4.0  # QUEUE_DELAY scaler: add a worker when a job waited this long
    ping_interval_ms: int = 5000
    heartbeat_misses: int = 3  # no ping for misses × interval → the worker is killed as hung
    stop_grace_s: float = 5.0
    restart_backoff_max_s: float = 30.0

    # --- jobs
    execution_timeout_ms: int = 600_000
    ttl_ms: int = 86_400_000
    min_execution_timeout_ms: int = 5_000
    min_ttl_ms: int = 10_000
    execution_timeout_status: Literal["TIMED_OUT", "FAILED"] = "TIMED_OUT"
    max_requeues: int = 1  # a job whose worker died is requeued this often, then FAILED
    async_retention_s: float = 1800.0
    sync_retention_s: float = 60.0

    # --- long-polls
    runsync_wait_ms: int = 90_000
    stream_wait_ms: int = 2_000
    take_hold_s: float = 20.0
    stop_hold_s: float = 20.0

    # --- webhooks and limits
    webhook_attempts: int = 3
    webhook_retry_delay_s: float = 10.0
    run_body_limit: int = 10 * _MIB
    runsync_body_limit: int = 20 * _MIB

    # --- housekeeping, faults, conformance
    sweep_interval_s: float = 0.1
    fault_seed: int | None = None
    record_worker_wire: bool = False

    # --- endpoint type: a queue (the /v2 API above), or a load balancer (direct HTTP to workers)
    endpoint_type: Literal["queue", "load_balancer"] = "queue"
    lb_worker_command: tuple[str, ...] = DEFAULT_LB_WORKER_COMMAND
    lb_request_timeout_s: float = 120.0  # no worker ready by then → 400 (RunPod: 2 minutes)
    lb_requests_per_worker: int = 4  # start another worker above this many requests per worker
    lb_ping_interval_s: float = 0.1  # how often an initialising worker's /ping is asked

    @property
    def load_balancer(self) -> bool:
        return self.endpoint_type == "load_balancer"

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise InvalidConfig("Local RunPod endpoint settings are invalid: " + "; ".join(problems) + ".")

    def _problems(self) -> list[str]:
        checks: list[tuple[bool, str]] = [
            (bool(self.endpoint_id.strip()), "endpoint_id must not be empty"),
            (bool(self.api_key), "api_key must not be empty"),
            (0 <= self.port <= 65535, "port must be 0-65535"),
            (bool(self.worker_command), "worker_command must name a program"),
            (self.min_workers >= 0, "min_workers must be ≥ 0"),
            (self.max_workers >= 1, "max_workers must be ≥ 1"),
            (self.min_workers <= self.max_workers, "min_workers must not exceed max_workers"),
            (self.idle_timeout_s >= 0, "idle_timeout_s must be ≥ 0"),
            (self.cold_start_s >= 0, "cold_start_s must be ≥ 0"),
            (self.queue_delay_s >= 0, "queue_delay_s must be ≥ 0"),
            (self.ping_interval_ms >= 1000, "ping_interval_ms must be ≥ 1000 (the SDK busy-loops below)"),
            (self.heartbeat_misses >= 2, "heartbeat_misses must be ≥ 2"),
            (self.max_requeues >= 0, "max_requeues must be ≥ 0"),
            (1000 <= self.runsync_wait_ms <= 300_000, "runsync_wait_ms must be 1000-300000"),
            (self.take_hold_s > 0 and self.stop_hold_s > 0, "take/stop hold must be > 0"),
            (self.take_hold_s < 90 and self.stop_hold_s < 90, "take/stop hold must stay under the SDK's 90 s"),
            (self.webhook_attempts >= 1, "webhook_attempts must be ≥ 1"),
            (self.endpoint_type in ("queue", "load_balancer"), "endpoint_type must be queue or load_balancer"),
            (bool(self.lb_worker_command), "lb_worker_command must name a program"),
            (self.lb_request_timeout_s > 0, "lb_request_timeout_s must be > 0"),
            (self.lb_requests_per_worker >= 1, "lb_requests_per_worker must be ≥ 1"),
            (self.lb_ping_interval_s > 0, "lb_ping_interval_s must be > 0"),
            (0 < self.execution_timeout_ms <= _SEVEN_DAYS_MS, "execution_timeout_ms out of range"),
            (0 < self.ttl_ms <= _SEVEN_DAYS_MS, "ttl_ms out of range"),
        ]
        return [message for ok, message in checks if not ok]

    @property
    def max_policy_ms(self) -> int:
        return _SEVEN_DAYS_MS
