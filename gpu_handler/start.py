"""`pete worker` / `python -m gpu_handler`: wait for the model server, preload, run the RunPod SDK loop.

The readiness wait and the preload run in their own short event loop with their own HTTP
client; the SDK then starts its loop (`asyncio.run`), and the handler's client opens its
connections there, so no connection crosses event loops.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from .backends import build_backend, build_http_client
from .config import WorkerConfig, WorkerSettings
from .errors import WorkerError
from .handler import JobHandler
from .readiness import prepare_backend
from .tracing import configure_tracing

__all__ = ["main", "prepare"]

logger = logging.getLogger("gpu_handler")


async def prepare(config: WorkerConfig) -> dict[str, float]:
    """Wait for the model server and preload `config.preload`; return load seconds per model."""
    async with build_http_client(read_timeout_s=config.read_timeout_s, max_connections=4) as client:
        return await prepare_backend(
            build_backend(config, client),
            base_url=config.model_url,
            timeout_s=config.ready_timeout_s,
            preload=config.preload,
        )


def main() -> None:
    """Run the worker until the SDK exits; exit 1 with a readable message if the model server fails."""
    settings = WorkerSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = WorkerConfig.from_settings(settings)
    configure_tracing(settings.otel_exporter_otlp_endpoint)
    try:
        asyncio.run(prepare(config))
    except WorkerError as err:
        logger.error("worker not started: %s", err)
        sys.exit(1)

    import runpod  # the SDK is heavy and only the worker needs it

    client = build_http_client(read_timeout_s=config.read_timeout_s, max_connections=config.concurrency + 2)
    handler = JobHandler(build_backend(config, client), config)
    runpod.serverless.start(
        {
            "handler": handler.handle,
            "return_aggregate_stream": True,
            "concurrency_modifier": handler.concurrency,
        }
    )
