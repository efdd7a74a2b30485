"""Operations: deploy and rollback through RunPod REST, system checks, `pete doctor`."""

from __future__ import annotations

from .deploy import Deployer, DeployRecord, RolloutState, deploy_gate, gated_deployer
from .doctor import run_doctor
from .health import HealthReport, run_checks
from .runpod_ops import RUNPOD_NOT_CONFIGURED_HINT, runpod_client

__all__ = [
    "RUNPOD_NOT_CONFIGURED_HINT",
    "DeployRecord",
    "Deployer",
    "HealthReport",
    "RolloutState",
    "deploy_gate",
    "gated_deployer",
    "run_checks",
    "run_doctor",
    "runpod_client",
]
