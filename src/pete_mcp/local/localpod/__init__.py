"""The local RunPod endpoint: RunPod serverless on one machine, with real workers.

Public queue API on one side (`/v2/{endpoint_id}/run`, `runsync`, `status`, `stream`,
`cancel`, `retry`, `purge-queue`, `health`, the OpenAI route), the runpod SDK's worker
protocol on the other (`job-take`, `job-done`, `job-stream`, `ping`, `job-stop`), or, as a
load-balancing endpoint (`endpoint_type="load_balancer"`), `/lb/{endpoint_id}/...` relayed
straight to workers' own HTTP servers (`python -m gpu_handler --http`); and a supervisor
running real worker processes (`python -m gpu_handler`) between min and max,
with cold starts, idle timeout, crash replacement and fault injection. See docs/localpod.md.
"""

from __future__ import annotations

from ._app import build_localpod_app
from ._config import DEFAULT_LB_WORKER_COMMAND, DEFAULT_WORKER_COMMAND, LocalPodConfig
from ._errors import InvalidConfig, InvalidRequest, LocalPodError, NotRunning
from ._faults import Faults
from ._job import Job, JobStatus
from ._pod import LocalPod
from ._state import PodState
from ._wirelog import WireLog, WireRecord

__all__ = [
    "DEFAULT_LB_WORKER_COMMAND",
    "DEFAULT_WORKER_COMMAND",
    "Faults",
    "InvalidConfig",
    "InvalidRequest",
    "Job",
    "JobStatus",
    "LocalPod",
    "LocalPodConfig",
    "LocalPodError",
    "NotRunning",
    "PodState",
    "WireLog",
    "WireRecord",
    "build_localpod_app",
]
