"""`pete localpod`: serves in the foreground and, on SIGINT or SIGTERM, stops every worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.localpod import REPO_ROOT, live_group_members

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runpod_sdk")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_idle_workers(base: str, headers: dict[str, str], count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            workers = httpx.get(f"{base}/health", headers=headers).json()["workers"]
            if workers["idle"] + workers["running"] >= count:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the local endpoint's workers did not come up")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_pete_localpod_serves_until_signalled_and_leaves_no_process_behind(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LOCAL_ENDPOINT_PORT": str(port),
        "LOCAL_API_KEY": "cli-key",
        "LOCAL_MIN_WORKERS": "2",
        "LOCAL_MAX_WORKERS": "2",
        "LOCAL_WORKER_COMMAND": f"{sys.executable} -m tests.support.workers.stream_echo",
        "DATA_DIR": str(tmp_path / "data"),
    }
    pete = Path(sys.executable).parent / "pete"
    proc = subprocess.Popen(
        [str(pete), "localpod"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}/v2/local"
        headers = {"Authorization": "Bearer cli-key"}
        wait_for_idle_workers(base, headers, 2, proc)
        answer = httpx.post(f"{base}/runsync", json={"input": {"chunks": ["ok"]}}, headers=headers, timeout=30).json()
        assert answer["status"] == "COMPLETED"
        listing = httpx.get(f"http://127.0.0.1:{port}/_admin/workers", headers=headers).json()["workers"]
        pids = [w["pid"] for w in listing]
        assert len(pids) == 2 and all(pids)

        proc.send_signal(stop_signal)
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output
        assert "Local RunPod endpoint 'local' at http://127.0.0.1" in output
        assert [pid for pid in pids if live_group_members(pid)] == []
        assert (tmp_path / "data" / "localpod" / "logs").is_dir()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_workers_die_with_an_endpoint_that_is_killed_outright(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "LOCAL_ENDPOINT_PORT": str(port),
        "LOCAL_API_KEY": "cli-key",
        "LOCAL_MIN_WORKERS": "1",
        "LOCAL_WORKER_COMMAND": f"{sys.executable} -m tests.support.workers.stream_echo",
        "DATA_DIR": str(tmp_path / "data"),
    }
    pete = Path(sys.executable).parent / "pete"
    proc = subprocess.Popen(
        [str(pete), "localpod"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        headers = {"Authorization": "Bearer cli-key"}
        wait_for_idle_workers(f"http://127.0.0.1:{port}/v2/local", headers, 1, proc)
        listing = httpx.get(f"http://127.0.0.1:{port}/_admin/workers", headers=headers).json()["workers"]
        (group,) = [w["pid"] for w in listing]
        assert live_group_members(group)
        proc.kill()  # no chance to stop its workers in order
        proc.communicate(timeout=10)
        deadline = time.monotonic() + 10
        while live_group_members(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert live_group_members(group) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
