"""The local model server: its config file, its lifecycle, and the real server the tests share."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from pete_mcp.core.errors import ProviderUnavailable
from pete_mcp.core.models import LOCAL_MODELS
from pete_mcp.local.model_server import (
    GEMMA_ALIAS,
    SMOLLM2_ALIAS,
    LocalModel,
    ModelServer,
    locate_local_models,
    write_server_config,
)
from tests.support.model_server import RunningModelServer
from tests.support.require import missing


def test_config_serves_both_models_one_request_at_a_time(tmp_path: Path) -> None:
    models = [LocalModel(SMOLLM2_ALIAS, tmp_path / "smol.gguf"), LocalModel(GEMMA_ALIAS, tmp_path / "g.gguf", "gemma")]
    path = write_server_config(tmp_path / "cfg.json", models, host="127.0.0.1", port=9999, n_threads=3)

    config = json.loads(path.read_text())
    assert config["interrupt_requests"] is False  # else a second request truncates the first stream
    assert (config["host"], config["port"]) == ("127.0.0.1", 9999)
    assert [m["model_alias"] for m in config["models"]] == ["smollm2", "gemma3-270m"]
    assert [m.get("chat_format") for m in config["models"]] == [None, "gemma"]
    assert {(m["n_threads"], m["n_ctx"]) for m in config["models"]} == {(3, 2048)}


def test_each_local_model_is_loaded_with_the_context_window_the_registry_gives_it(tmp_path: Path) -> None:
    registered = {spec.primary.model: spec.context_window for spec in LOCAL_MODELS}
    models = locate_local_models(tmp_path)
    path = write_server_config(tmp_path / "cfg.json", models, host="127.0.0.1", port=9999, n_threads=1, n_ctx=512)
    config = json.loads(path.read_text())
    assert {m["model_alias"]: m["n_ctx"] for m in config["models"]} == registered


def test_a_server_that_exits_at_start_fails_with_its_log(tmp_path: Path) -> None:
    server = ModelServer(data_dir=tmp_path, python="false", ready_timeout_s=10)
    with pytest.raises(ProviderUnavailable, match="exited during start"):
        server.start()
    assert not server.running


@pytest.mark.slow
def test_the_shared_server_answers_with_both_model_aliases(model_server: RunningModelServer) -> None:
    response = httpx.get(f"{model_server.url}/v1/models", timeout=5)
    assert [m["id"] for m in response.json()["data"]] == [SMOLLM2_ALIAS, GEMMA_ALIAS]
    assert model_server.url.startswith("http://127.0.0.1:")


@pytest.mark.slow
def test_gemma_is_served_with_the_gemma_chat_format(model_server: RunningModelServer) -> None:
    body = {"model": GEMMA_ALIAS, "messages": [{"role": "user", "content": "Rent"}], "max_tokens": 4, "temperature": 0}
    response = httpx.post(f"{model_server.url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200
    assert response.json()["model"] == GEMMA_ALIAS
    assert response.json()["usage"]["completion_tokens"] <= 4


@pytest.mark.slow
def test_stop_ends_the_process(model_data_dir: Path) -> None:
    server = ModelServer(data_dir=model_data_dir)
    try:
        server.start()
    except Exception as err:  # the `local` extra may be missing
        missing(f"the local model server did not start: {err}")
    assert server.running
    server.stop()
    assert not server.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/v1/models", timeout=2)


@pytest.mark.slow
def test_the_server_stops_when_the_process_that_started_it_is_killed(model_data_dir: Path) -> None:
    data_dir = model_data_dir
    starter = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from pete_mcp.local.model_server import ModelServer
        server = ModelServer(data_dir=Path({str(data_dir)!r}))
        server.start()
        print(server._process.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        if not line.strip():
            missing("the local model server could not start here (is the `local` extra installed?)")
        server_pid = int(line)
        os.kill(server_pid, 0)  # running
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # polling another process: nothing to wait on
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(server_pid, signal.SIGKILL)
    pytest.fail("the model server outlived the process that started it")
