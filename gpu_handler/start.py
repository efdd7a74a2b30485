"""`pete worker` / `python -m gpu_handler`: wait for the model server, preload, run the RunPod SDK loop
(with `job_loop.PromptJobScaler`: a taken job starts at once, not on the SDK's 100 ms tick).

`python -m gpu_handler --http` runs the worker of a load-balancing endpoint instead: its own
HTTP server on `PORT` (`/ping` on `PORT_HEALTH`), see `http_server.py`.

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

__all__ = ["main", "prepare", "serve_http"]

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


def main(argv: list[str] | None = None) -> None:
    """Run the worker until the SDK exits; exit 1 with a readable message if the model server fails."""
    args = sys.argv[1:] if argv is None else argv
    settings = WorkerSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = WorkerConfig.from_settings(settings)
    configure_tracing(settings.otel_exporter_otlp_endpoint)
    if "--http" in args:
        asyncio.run(serve_http(config, settings))
        return
    try:
        asyncio.run(prepare(config))
    except WorkerError as err:
        logger.error("worker not started: %s", err)
        sys.exit(1)

    from .job_loop import start  # imports the runpod SDK: heavy, and only this worker needs it

    client = build_http_client(read_timeout_s=config.read_timeout_s, max_connections=config.concurrency + 2)
    handler = JobHandler(build_backend(config, client), config)
    start(
        prompt=settings.worker_prompt_job_loop,
        config={
            "handler": handler.handle,
            "return_aggregate_stream": True,
            "concurrency_modifier": handler.concurrency,
        },
    )


async def serve_http(config: WorkerConfig, settings: WorkerSettings) -> None:
    """Serve the load-balancing worker until stopped; `/ping` says 204 until the model server is ready."""
    import uvicorn  # in the worker image through the runpod SDK's fastapi[all]; Pete's own dependency too

    from .http_server import build_http_app

    client = build_http_client(read_timeout_s=config.read_timeout_s, max_connections=config.concurrency + 2)
    async with client:
        app = build_http_app(JobHandler(build_backend(config, client), config), prepare=lambda: prepare(config))
        health_port = settings.port_health
        ports = [settings.port] if health_port in (None, settings.port) else [settings.port, health_port]
        servers = [
            uvicorn.Server(
                uvicorn.Config(
                    app,
                    host=settings.worker_http_host,
                    port=port,
                    log_level="warning",
                    lifespan="on" if port == settings.port else "off",
                )
            )
            for port in ports
        ]
        logger.info("serving the load-balancing worker on %s:%s", settings.worker_http_host, settings.port)
        await asyncio.gather(*(server.serve() for server in servers))
