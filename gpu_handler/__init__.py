"""Pete's RunPod worker: the handler the unmodified `runpod` SDK loop runs, its model-server backends,
and the start script (`python -m gpu_handler`, `pete worker`).

`BAKED_MODELS` are the Ollama models `Dockerfile.serverless` bakes into the worker image (its
`BAKED_MODELS` build argument): exactly the models the gateway's registry routes to RunPod, and
tests check the Dockerfile and the registry against them.
"""

from __future__ import annotations

from .config import WorkerConfig
from .handler import JobHandler

__all__ = ["BAKED_MODELS", "JAMIE_MODEL", "JobHandler", "WorkerConfig"]

JAMIE_MODEL = "peteollama:jamie-fixed"

BAKED_MODELS: tuple[str, ...] = (
    JAMIE_MODEL,
    "peteollama:property-manager-v0.0.1",
    "llama3:latest",
)
