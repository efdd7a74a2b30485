"""The worker's configuration: the `worker_*` settings, frozen for one worker process.

A plain dataclass so tests build one directly; `from_settings` is the only link to the
environment (through `pete_mcp.settings.Settings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pete_mcp.core.settings import Settings

__all__ = ["WorkerConfig"]


@dataclass(frozen=True)
class WorkerConfig:
    """How one worker talks to its model server and streams to RunPod."""

    model_url: str = "http://127.0.0.1:8781"
    backend: Literal["openai", "ollama"] = "openai"
    concurrency: int = 4
    preload: tuple[str, ...] = ()
    ready_timeout_s: float = 300.0
    chunk_chars: int = 48
    chunk_max_delay_s: float = 0.08
    keep_alive: int | str = -1
    read_timeout_s: float = 300.0
    worker_id: str | None = None

    @property
    def default_model(self) -> str | None:
        """The model a job that names none runs on: the first preloaded one (None if none is)."""
        return self.preload[0] if self.preload else None

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerConfig:
        return cls(
            model_url=settings.worker_model_url.rstrip("/"),
            backend=settings.worker_backend,
            concurrency=max(1, settings.worker_concurrency),
            preload=tuple(name.strip() for name in settings.worker_preload.split(",") if name.strip()),
            ready_timeout_s=settings.worker_ready_timeout_s,
            chunk_chars=max(1, settings.worker_chunk_chars),
            chunk_max_delay_s=max(0.0, settings.worker_chunk_max_delay_s),
            keep_alive=_keep_alive(settings.worker_keep_alive),
            read_timeout_s=settings.worker_read_timeout_s,
            worker_id=settings.runpod_pod_id,
        )


def _keep_alive(raw: str) -> int | str:
    """Ollama takes keep_alive as seconds (a number, -1 = forever) or a duration string ("10m")."""
    raw = raw.strip()
    try:
        return int(raw)
    except ValueError:
        return raw
