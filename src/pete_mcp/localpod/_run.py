"""`run_localpod`: `pete localpod` — the local endpoint in the foreground until Ctrl-C/SIGTERM.

It prints where the endpoint is and how to point Pete at it, and on SIGINT or SIGTERM stops
every worker process before exiting, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from ..errors import ConfigError
from ..settings import Settings
from ._config import LocalPodConfig
from ._pod import LocalPod

__all__ = ["run_localpod"]


def run_localpod(settings: Settings) -> int:
    """Serve the local endpoint from `settings` until a stop signal; the process exit code."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = LocalPodConfig.from_settings(settings)
    except ConfigError as exc:
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
