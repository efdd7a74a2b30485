"""`pete up` and `pete prompt` as a user runs them: real processes, the real local model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from pete_mcp.core.settings import Settings
from pete_mcp.local.model_server import pick_free_port
from pete_mcp.local.stack import connection_help
from tests.support.require import require_module

require_module("llama_cpp", "the local stack needs the `local` extra")


def test_connection_help_names_every_face_and_a_pasteable_mcp_config() -> None:
    text = connection_help(Settings(public_url="https://pete.example.com"), "http://127.0.0.1:8765")
    assert "http://127.0.0.1:8765/mcp" in text
    assert "https://pete.example.com/vapi/webhook" in text
    assert '"command": "uv"' in text and "pete-mcp" in text


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout_s: float) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} never appeared:\n{''.join(seen)}")


@pytest.mark.slow
def test_pete_up_serves_a_real_prompt_then_stops_every_child_on_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "PORT": str(pick_free_port()),
        "LOCAL_ENDPOINT_PORT": str(pick_free_port()),
        "MODEL_SERVER_PORT": str(pick_free_port()),
        "LOCAL_MAX_WORKERS": "1",
        "RUNPOD_TIMEOUT_S": "120",  # a loaded CI machine can take long for the first token
        "PYTHONUNBUFFERED": "1",
    }
    for key in ("RUNPOD_API_KEY", "RUNPOD_ENDPOINT_ID"):
        env.pop(key, None)
    up = subprocess.Popen(
        [sys.executable, "-m", "pete_mcp.cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = _wait_for_line(up, "Ctrl-C stops everything", timeout_s=240)
        assert "Pete is up" in banner and "/mcp" in banner
        children = psutil.Process(up.pid).children(recursive=True)
        assert len(children) >= 2  # model server and at least one worker

        prompt = subprocess.run(
            [
                sys.executable,
                "-m",
                "pete_mcp.cli",
                "prompt",
                "Is there a fee for breaking my lease?",
                "--max-tokens",
                "16",
                "--temperature",
                "0",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert prompt.returncode == 0, prompt.stderr
        assert prompt.stdout.strip(), "a real answer streams to stdout"
        assert "first token" in prompt.stderr and "[runpod:smollm2]" in prompt.stderr
        # The worker posts job-done just after its last streamed chunk: poll briefly for it.
        deadline = time.monotonic() + 30
        completed = 0
        while completed < 1 and time.monotonic() < deadline:
            completed = httpx.get(
                f"http://127.0.0.1:{env['LOCAL_ENDPOINT_PORT']}/v2/local/health",
                headers={"Authorization": "Bearer local-dev-key"},
            ).json()["jobs"]["completed"]
            time.sleep(0.1)
        assert completed >= 1  # the answer went through a RunPod job

        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
        assert [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []
    finally:
        if up.poll() is None:  # a failed assertion: still stop the stack gracefully, children included
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                up.kill()
