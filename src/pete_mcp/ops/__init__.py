"""Operations: deploy and rollback through RunPod REST, system checks, `pete doctor`."""

from __future__ import annotations

from .deploy import Deployer, DeployRecord, RolloutState, deploy_gate, gated_deployer, recent_images
from .doctor import run_doctor
from .health import HealthReport, run_checks
from .operator_view import OUTCOMES, call_outcome, recent_calls, servable_models
from .prompt_fit import ModelTokenizer, fit_turn, tokenizer_for
from .runpod_ops import RUNPOD_NOT_CONFIGURED_HINT, runpod_client
from .worker_sources import LocalPodWorkers, RunPodWorkers, read_report, worker_source
from .workers import Diagnosis, WorkerLogs, WorkerReport, WorkerSource, diagnose

__all__ = [
    "OUTCOMES",
    "RUNPOD_NOT_CONFIGURED_HINT",
    "DeployRecord",
    "Deployer",
    "Diagnosis",
    "HealthReport",
    "LocalPodWorkers",
    "ModelTokenizer",
    "RolloutState",
    "RunPodWorkers",
    "WorkerLogs",
    "WorkerReport",
    "WorkerSource",
    "call_outcome",
    "deploy_gate",
    "diagnose",
    "fit_turn",
    "gated_deployer",
    "read_report",
    "recent_calls",
    "recent_images",
    "run_checks",
    "run_doctor",
    "runpod_client",
    "servable_models",
    "tokenizer_for",
    "worker_source",
]
