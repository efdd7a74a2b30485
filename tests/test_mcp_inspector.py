"""An independent MCP client, the MCP Inspector CLI (npm, pinned 2.12.0), against Pete with a real model.

Over stdio it launches `pete-mcp` itself, configured by environment to serve SmolLM2 from the
real llama.cpp model server; over HTTP it talks to `pete serve` (a real process, same settings)
with a bearer token. Skips when `npm install` has not been run (node_modules/ is absent).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pete_mcp.local.model_server import pick_free_port
from tests.support.require import require

ROOT = Path(__file__).resolve().parents[1]
INSPECTOR = ROOT / "node_modules" / ".bin" / "mcp-inspector"
PETE_MCP = Path(sys.executable).parent / "pete-mcp"
PETE = Path(sys.executable).parent / "pete"
TOKEN = "inspector-test-token"
TOOLS = {"run_prompt", "get_job", "cancel_job", "switch_model", "list_models", "health", "deploy", "rollback"}

pytestmark = [
    pytest.mark.slow,
]
require(INSPECTOR.exists(), "MCP Inspector not installed: run `npm install` (package.json)")


def inspector(*args: str, tmp_path: Path, expect_rc: int = 0) -> dict[str, Any]:
    env = {
        **os.environ,
        "MCP_CATALOG_PATH": str(tmp_path / "inspector-catalog.json"),
        "MCP_CLIENT_CONFIG_PATH": str(tmp_path / "inspector-client.json"),
    }
    proc = subprocess.run(
        [str(INSPECTOR), "--cli", "--format", "json", "-q", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == expect_rc, (
        f"rc={proc.returncode}\nstdout={proc.stdout[-2000:]}\nstderr={proc.stderr[-2000:]}"
    )
    return json.loads(proc.stdout or proc.stderr)


@pytest.fixture(scope="module")
def pete_env(tmp_path_factory: pytest.TempPathFactory, model_server: Any) -> dict[str, str]:
    """Settings that make Pete serve SmolLM2 straight from the real model server.

    The model server speaks OpenAI's API, so the OpenAI-compatible fallback provider's settings
    (OPENROUTER_BASE_URL and a key it ignores) point at it, and MODELS_FILE routes `smollm2` there.
    No local RunPod endpoint runs, so the RunPod checks fail, honestly.
    """
    models = [
        {
            "alias": "smollm2",
            "chain": [{"provider": "openrouter", "model": model_server.chat_model}],
            "context_window": 2048,
            "description": "SmolLM2 from the local model server.",
            "system_prompt": "You are Jamie, a property-management phone assistant. Answer in one short sentence.",
        }
    ]
    home = tmp_path_factory.mktemp("pete")
    models_file = home / "models.json"
    models_file.write_text(json.dumps(models))
    return {
        "DATA_DIR": str(home / "data"),
        "OPENROUTER_API_KEY": "unused-by-llama-cpp",
        "OPENROUTER_BASE_URL": model_server.url + "/v1",
        "MODELS_FILE": str(models_file),
        "ACTIVE_MODEL": "smollm2",
        "LOCAL_ENDPOINT_PORT": str(pick_free_port()),
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def stdio_target(pete_env: dict[str, str]) -> list[str]:
    """`-e` settings plus the command the Inspector launches: `pete-mcp`."""
    return [arg for key, value in pete_env.items() for arg in ("-e", f"{key}={value}")] + ["--", str(PETE_MCP)]


def test_inspector_over_stdio_lists_tools_and_calls_health_list_models_and_run_prompt(tmp_path: Path, stdio_target):
    tools = inspector("--method", "tools/list", *stdio_target, tmp_path=tmp_path)
    listed = {t["name"]: t for t in tools["result"]["tools"]}
    assert set(listed) >= TOOLS
    assert [name for name, t in listed.items() if not (t.get("title") or "").strip()] == []

    health = inspector("--method", "tools/call", "--tool-name", "health", *stdio_target, tmp_path=tmp_path)
    checks = {c["name"]: c for c in health["result"]["structuredContent"]["checks"]}
    assert checks["active_model"]["status"] == "ok", checks["active_model"]
    assert checks["storage"]["status"] == "ok"

    models = inspector("--method", "tools/call", "--tool-name", "list_models", *stdio_target, tmp_path=tmp_path)
    assert models["result"]["structuredContent"]["active"] == "smollm2"
    aliases = [m["alias"] for m in models["result"]["structuredContent"]["models"]]
    assert listed["switch_model"]["inputSchema"]["properties"]["name"]["enum"] == aliases

    # Each stdio call is a fresh server process, so give the one call the longest budget (CPU is shared).
    args = json.dumps({"prompt": "When is rent due?", "max_tokens": 8, "temperature": 0, "time_budget_s": 55})
    reply = inspector(
        "--method",
        "tools/call",
        "--tool-name",
        "run_prompt",
        "--tool-args-json",
        args,
        *stdio_target,
        tmp_path=tmp_path,
    )
    out = reply["result"]["structuredContent"]
    assert out["status"] == "completed" and out["text"].strip(), out
    assert out["provider"] == "openrouter" and out["usage"]["completion_tokens"] > 0


@pytest.fixture(scope="module")
def http_url(tmp_path_factory: pytest.TempPathFactory, pete_env: dict[str, str]) -> Iterator[str]:
    """`pete serve` as a real process on a free loopback port, with MCP_TOKEN set."""
    tmp_path = tmp_path_factory.mktemp("serve")
    port = pick_free_port()
    env = {**os.environ, **pete_env, "PORT": str(port), "MCP_TOKEN": TOKEN}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([str(PETE), "serve"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pete serve did not start: {(tmp_path / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_inspector_over_http_with_a_bearer_token(tmp_path: Path, http_url: str):
    auth = ["--header", f"Authorization: Bearer {TOKEN}"]
    tools = inspector(http_url, *auth, "--method", "tools/list", tmp_path=tmp_path)
    listed = {t["name"]: t for t in tools["result"]["tools"]}
    assert set(listed) >= TOOLS

    health = inspector(http_url, *auth, "--method", "tools/call", "--tool-name", "health", tmp_path=tmp_path)
    checks = {c["name"]: c for c in health["result"]["structuredContent"]["checks"]}
    assert checks["active_model"]["status"] == "ok", checks["active_model"]

    models = inspector(http_url, *auth, "--method", "tools/call", "--tool-name", "list_models", tmp_path=tmp_path)
    assert models["result"]["structuredContent"]["active"] == "smollm2"
    aliases = [m["alias"] for m in models["result"]["structuredContent"]["models"]]
    assert listed["switch_model"]["inputSchema"]["properties"]["name"]["enum"] == aliases

    args = json.dumps({"prompt": "Hi, is the office open today?", "max_tokens": 8, "temperature": 0})
    call = ["--method", "tools/call", "--tool-args-json"]
    out = inspector(http_url, *auth, *call, args, "--tool-name", "run_prompt", tmp_path=tmp_path)["result"]
    if out["structuredContent"]["status"] != "completed":  # a slow CPU: the server kept the job, collect it
        follow = json.dumps({"job_id": out["structuredContent"]["job_id"], "wait_s": 45})
        out = inspector(http_url, *auth, *call, follow, "--tool-name", "get_job", tmp_path=tmp_path)["result"]
    assert out["structuredContent"]["status"] == "completed" and out["structuredContent"]["text"].strip()


def test_inspector_without_the_token_is_refused(tmp_path: Path, http_url: str):
    refused = inspector(http_url, "--stored-auth-only", "--method", "tools/list", tmp_path=tmp_path, expect_rc=3)
    assert refused["error"]["code"] == "auth_required"
