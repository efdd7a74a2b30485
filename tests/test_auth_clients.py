"""Independent clients against Pete with sign-in on: mcp-remote signing in with OAuth (Dynamic
Client Registration, PKCE, the consent page) and the MCP Inspector CLI with the static header.

mcp-remote opens "the browser" through `BROWSER`; here that is `tests/support/play_browser.py`,
which signs in on the consent page and delivers the redirect to mcp-remote's loopback callback.
The SDK's stdio client then drives mcp-remote as Claude Desktop would. Both Node tools are pinned
in package.json (`npm install`); without them the tests skip outside CI and fail in CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.support.oauth import OPERATOR, PASSWORD, STATIC_TOKEN, pete_auth_server

ROOT = Path(__file__).resolve().parents[1]
MCP_REMOTE = ROOT / "node_modules" / ".bin" / "mcp-remote"
INSPECTOR = ROOT / "node_modules" / ".bin" / "mcp-inspector"
IN_CI = os.environ.get("CI") == "true"


def need(tool: Path) -> None:
    if not tool.exists():
        if IN_CI:
            pytest.fail(f"{tool.name} is not installed: run `npm install` (package.json)")
        pytest.skip(f"{tool.name} not installed: run `npm install` (package.json)")


@pytest.mark.anyio
async def test_mcp_remote_signs_in_with_oauth_and_calls_tools(tmp_path: Path):
    need(MCP_REMOTE)
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT}/tests/support/play_browser.py" "$@"\n')
    browser.chmod(0o755)
    log = tmp_path / "browser.log"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "BROWSER": str(browser),
        "MCP_REMOTE_CONFIG_DIR": str(tmp_path / "mcp-auth"),
        "PETE_TEST_OPERATOR": OPERATOR,
        "PETE_TEST_PASSWORD": PASSWORD,
        "PETE_TEST_BROWSER_LOG": str(log),
    }
    with pete_auth_server(tmp_path / "pete") as pete:
        params = StdioServerParameters(command=str(MCP_REMOTE), args=[pete.resource, "--host", "127.0.0.1"], env=env)
        async with Client(params, mode="legacy") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            health = await client.call_tool("health", {"probe": False})
    assert {"health", "deploy"} <= tools and not health.is_error
    assert "consent 303" in log.read_text() and "callback 200" in log.read_text()


def test_the_inspector_cli_connects_with_the_static_header_while_oauth_is_on(tmp_path: Path):
    need(INSPECTOR)

    def inspector(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(INSPECTOR), "--cli", "--format", "json", "-q", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)

    with pete_auth_server(tmp_path / "pete") as pete:
        env = {
            **os.environ,
            "MCP_CATALOG_PATH": str(tmp_path / "catalog.json"),
            "MCP_CLIENT_CONFIG_PATH": str(tmp_path / "client.json"),
        }
        header = f"Authorization: Bearer {STATIC_TOKEN}"
        proc = inspector(pete.resource, "--header", header, "--method", "tools/call", "--tool-name", "list_models")
        refused = inspector(pete.resource, "--header", "Authorization: Bearer wrong", "--method", "tools/list")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)["result"]
    assert result["structuredContent"]["active"] == "jamie"
    assert refused.returncode != 0
