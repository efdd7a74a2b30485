"""`pete localpod` (`run_localpod`) and the endpoint config Pete's settings describe (`localpod_config`):
`pete localpod` — the local endpoint in the foreground until Ctrl-C/SIGTERM.

It prints where the endpoint is and how to point Pete at it, and on SIGINT or SIGTERM stops
every worker process before exiting, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import signal
import sys
from typing import Any

from pete_mcp.core import Settings

from .localpod import DEFAULT_WORKER_COMMAND, InvalidConfig, LocalPod, LocalPodConfig

__all__ = ["localpod_config", "run_localpod"]


def localpod_config(settings: Settings, **overrides: Any) -> LocalPodConfig:
    """The endpoint `pete localpod` / `pete up` run, from Pete's settings."""
    command = shlex.split(settings.local_worker_command) if settings.local_worker_command else []
    values: dict[str, Any] = {
        "endpoint_id": settings.local_endpoint_id,
        "api_key": settings.local_api_key.get_secret_value(),
        "port": settings.local_endpoint_port,
        "worker_command": tuple(command) or DEFAULT_WORKER_COMMAND,
        "run_dir": settings.data_dir / "localpod",
        "min_workers": settings.local_min_workers,
        "max_workers": settings.local_max_workers,
        "idle_timeout_s": settings.local_idle_timeout_s,
        "cold_start_s": settings.local_cold_start_s,
        "queue_delay_s": settings.local_queue_delay_s,
        "endpoint_type": settings.runpod_endpoint_type,  # the local endpoint emulates the type Pete uses
    }
    values.update(overrides)
    return LocalPodConfig(**values)


def run_localpod(settings: Settings) -> int:
    """Serve the local endpoint from `settings` until a stop signal; the process exit code."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = localpod_config(settings)
    except InvalidConfig as exc:
        print(f"pete localpod: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_serve_until_signalled(config))


async def _serve_until_signalled(config: LocalPodConfig) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with LocalPod(config) as pod:
            command = " ".join(config.worker_command)
            print(
                f"Local RunPod endpoint {pod.endpoint_id!r} at {pod.url}\n"
                f"  workers: {config.min_workers}-{config.max_workers} running `{command}`"
                f" (logs in {config.run_dir}/logs)\n"
                f"  point Pete at it with RUNPOD_BASE_URL={pod.url} and the LOCAL_API_KEY key\n"
                "  Ctrl-C stops the endpoint and every worker.",
                flush=True,
            )
            await stop.wait()
            print("Stopping the local endpoint and its workers...", flush=True)
    except OSError as exc:
        print(f"pete localpod: cannot serve on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0
