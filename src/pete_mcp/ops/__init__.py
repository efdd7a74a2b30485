"""Operations: deploy and rollback through RunPod REST, system checks, `pete doctor`."""

from __future__ import annotations

from .deploy import Deployer, DeployRecord, RolloutState
from .doctor import run_doctor
from .health import HealthReport, run_checks
from .operator_view import OUTCOMES, call_outcome, recent_calls, servable_models
from .runpod_ops import RUNPOD_NOT_CONFIGURED_HINT, runpod_client

__all__ = [
    "OUTCOMES",
    "RUNPOD_NOT_CONFIGURED_HINT",
    "DeployRecord",
    "Deployer",
    "HealthReport",
    "RolloutState",
    "call_outcome",
    "recent_calls",
    "run_checks",
    "run_doctor",
    "runpod_client",
    "servable_models",
]
