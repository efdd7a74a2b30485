"""Control jobs: warm a model up (load it, keep it resident) and list the worker's models."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from pete_mcp.contract import ControlJob, ControlResult

from .backends.base import ModelBackend
from .config import WorkerConfig
from .errors import BadInput

__all__ = ["run_control_job"]


async def run_control_job(
    job: ControlJob, backend: ModelBackend, config: WorkerConfig
) -> AsyncGenerator[dict[str, Any], None]:
    """Yield one `ControlResult.model_dump()`.

    Raises:
        BadInput: a warmup names no model and the worker preloads none.
    """
    load_s = None
    if job.action == "warmup":
        model = job.model or config.default_model
        if model is None:
            raise BadInput("A warmup job needs a `model` (this worker preloads none).")
        load_s = await backend.warmup(model)
    yield ControlResult(
        action=job.action, models=await backend.list_models(), load_s=load_s, worker_id=config.worker_id
    ).model_dump()
