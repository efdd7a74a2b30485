"""Starting and signalling worker processes.

Each worker runs in its own session (process group), because the runpod SDK forks a
heartbeat process that would outlive a killed worker: signalling the whole group leaves
nothing behind. A small shim (`_lifeline.py`) leads the group and kills it if the endpoint
process itself dies. The worker's environment is built from scratch (reference §2.2) plus a short
pass-through list, so the gateway's own secrets (a real RUNPOD_API_KEY, tokens) never reach
a worker, and `HOME` is a fresh directory so no `~/.runpod/config.toml` overrides the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._config import LocalPodConfig

__all__ = ["free_port", "lb_worker_environment", "signal_group", "spawn_worker_process", "worker_environment"]

_LIFELINE = Path(__file__).with_name("_lifeline.py")

# Variables a worker needs from the parent to run at all; anything WORKER_* is its own config.
_PASS_THROUGH = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "SSL_CERT_FILE",
    "LOG_LEVEL",
)


def worker_environment(
    config: LocalPodConfig,
    *,
    worker_id: str,
    secret: str,
    endpoint_url: str,
    home: Path,
    parent_env: Mapping[str, str],
) -> dict[str, str]:
    """The environment of one SDK worker talking to `endpoint_url` (`http://host:port/v2/EP`)."""
    env = {name: parent_env[name] for name in _PASS_THROUGH if name in parent_env}
    env.update({name: value for name, value in parent_env.items() if name.startswith("WORKER_")})
    env.update(config.worker_env)
    env.update(
        {
            "RUNPOD_WEBHOOK_GET_JOB": f"{endpoint_url}/job-take/$ID?gpu=LOCAL",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{endpoint_url}/job-done/$RUNPOD_POD_ID/$ID?gpu=LOCAL",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{endpoint_url}/job-stream/$RUNPOD_POD_ID/$ID?gpu=LOCAL",
            "RUNPOD_WEBHOOK_PING": f"{endpoint_url}/ping/$RUNPOD_POD_ID",
            "RUNPOD_POD_ID": worker_id,
            "RUNPOD_POD_HOSTNAME": f"{worker_id}-localpod",
            "RUNPOD_AI_API_KEY": secret,
            "RUNPOD_ENDPOINT_ID": config.endpoint_id,
            "RUNPOD_PING_INTERVAL": str(config.ping_interval_ms),
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
            "HOME": str(home),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def lb_worker_environment(
    config: LocalPodConfig, *, worker_id: str, port: int, home: Path, parent_env: Mapping[str, str]
) -> dict[str, str]:
    """The environment of one load-balancing worker: its own HTTP server on `port` (RunPod's PORT)."""
    env = {name: parent_env[name] for name in _PASS_THROUGH if name in parent_env}
    env.update({name: value for name, value in parent_env.items() if name.startswith("WORKER_")})
    env.update(config.worker_env)
    env.update(
        {
            "PORT": str(port),
            "PORT_HEALTH": str(port),
            "WORKER_HTTP_HOST": "127.0.0.1",
            "RUNPOD_POD_ID": worker_id,
            "RUNPOD_ENDPOINT_ID": config.endpoint_id,
            "HOME": str(home),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the worker binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def spawn_worker_process(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None, log_path: Path
) -> asyncio.subprocess.Process:
    """Start `argv` in a new session, under the lifeline shim, with output appended to `log_path`.

    The returned process is the shim; its pid is the process group of everything it runs.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    shim = (sys.executable, "-I", "-S", str(_LIFELINE), str(os.getpid()), "--", *argv)
    with log_path.open("ab") as log:
        return await asyncio.create_subprocess_exec(
            *shim,
            env=dict(env),
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the worker's whole process group; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
