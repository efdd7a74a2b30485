"""The worker's configuration: `WorkerSettings` reads the environment, `WorkerConfig` freezes it.

The worker ships alone in its image and imports only the job contract from Pete, so its
settings are its own (`WORKER_*`, `RUNPOD_POD_ID`, `LOG_LEVEL`), documented with Pete's in
docs/configuration.md. `WorkerConfig` is a plain dataclass so tests build one directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WorkerConfig", "WorkerSettings"]


class WorkerSettings(BaseSettings):
    """The worker's environment: the only place in `gpu_handler` that reads it."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    log_level: str = Field(default="INFO", description="Python logging level.")
    worker_backend: Literal["openai", "ollama"] = Field(
        default="openai", description="Model-server API the worker speaks: OpenAI /v1 or Ollama native /api."
    )
    worker_model_url: str = Field(default="http://127.0.0.1:8781", description="Base URL of the worker's model server.")
    worker_concurrency: int = Field(default=4, description="Jobs one worker runs at once (concurrency_modifier).")
    worker_preload: str = Field(default="", description="Comma-separated models the worker loads before taking jobs.")
    worker_ready_timeout_s: float = Field(default=300.0, description="How long the worker waits for its model server.")
    worker_chunk_chars: int = Field(default=48, description="Characters batched per streamed chunk (sentence-sized).")
    worker_chunk_max_delay_s: float = Field(default=0.08, description="Longest a streamed chunk is held back.")
    worker_keep_alive: str = Field(
        default="-1", description="Ollama keep_alive sent with every request (-1 = keep the model loaded forever)."
    )
    worker_read_timeout_s: float = Field(
        default=300.0, description="Longest the worker waits for the model server's next byte (covers model loads)."
    )
    runpod_pod_id: str | None = Field(
        default=None, description="Worker id RunPod gives each worker (RUNPOD_POD_ID); reported in job results."
    )
    port: int = Field(
        default=80, description="Load-balancing worker (`--http`): the port its HTTP server listens on (RunPod's PORT)."
    )
    port_health: int | None = Field(
        default=None,
        description="Load-balancing worker: the port `/ping` is served on (RunPod's PORT_HEALTH; default PORT).",
    )
    worker_http_host: str = Field(
        default="0.0.0.0", description="Load-balancing worker: the address its HTTP server binds (RunPod routes to it)."
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318) for GenAI metrics and traces; "
        "needs the `otlp` extra. Off when unset.",
    )
    worker_prompt_job_loop: bool = Field(
        default=True,
        description="Start a taken job at once (gpu_handler's job loop) instead of on the runpod SDK's 100 ms tick.",
    )


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
    def from_settings(cls, settings: WorkerSettings) -> WorkerConfig:
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
