"""Streamable HTTP at /mcp inside the one Starlette app: bearer auth, DNS-rebinding protection, no idle GET.

Header-level checks use Starlette's TestClient (the app's lifespan runs); the SDK client tests
use a real uvicorn server on a loopback port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr
from starlette.testclient import TestClient

from pete_mcp.app import build_app
from pete_mcp.core.errors import ConfigError
from pete_mcp.faces.mcp.server import mcp_face
from tests.support.mcp import ERAS, OpenAIStandIn, make_core, serve_in_thread

TOKEN = "op-token-for-tests"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def app_client(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    options: dict[str, Any] = getattr(request, "param", {"mcp_token": SecretStr(TOKEN)})
    core = make_core(tmp_path, OpenAIStandIn(), **options)
    with TestClient(build_app(core, faces=[mcp_face(core)]), base_url="http://127.0.0.1:8765") as client:
        yield client


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {**MCP_HEADERS, "Authorization": f"Bearer {token}"}


def test_no_token_is_401_with_www_authenticate(app_client: TestClient):
    response = app_client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    # MCP_TOKEN only: Pete runs no authorization server, so the challenge points at none.
    assert challenge.startswith("Bearer") and "resource_metadata=" not in challenge
    assert app_client.post("/mcp", json=INITIALIZE, headers=bearer("wrong")).status_code == 401


def test_the_right_token_opens_a_session(app_client: TestClient):
    response = app_client.post("/mcp", json=INITIALIZE, headers=bearer())
    assert response.status_code == 200 and response.headers["mcp-session-id"]
    assert "pete-mcp" in response.text


def test_with_only_mcp_token_no_authorization_server_is_advertised(app_client: TestClient):
    assert app_client.get("/.well-known/oauth-protected-resource/mcp").status_code == 404
    assert app_client.get("/.well-known/oauth-authorization-server").status_code == 404


def test_a_foreign_host_is_421(app_client: TestClient):
    response = app_client.post("/mcp", json=INITIALIZE, headers={**bearer(), "Host": "evil.example"})
    assert response.status_code == 421


def test_a_foreign_origin_is_403(app_client: TestClient):
    response = app_client.post("/mcp", json=INITIALIZE, headers={**bearer(), "Origin": "http://evil.example"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "app_client", [{"mcp_token": SecretStr(TOKEN), "allowed_hosts": "pete.example.com"}], indirect=True
)
def test_allowed_hosts_are_accepted_with_or_without_a_port(app_client: TestClient):
    for host in ("pete.example.com", "pete.example.com:443"):
        response = app_client.post("/mcp", json=INITIALIZE, headers={**bearer(), "Host": host})
        assert response.status_code == 200, host


def test_an_idle_get_is_405_not_a_hanging_stream(app_client: TestClient):
    response = app_client.get("/mcp", headers={"Accept": "text/event-stream", "Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405 and response.headers["allow"] == "POST, DELETE"


@pytest.mark.parametrize("app_client", [{}], indirect=True)
def test_on_loopback_without_a_token_no_auth_is_asked(app_client: TestClient):
    assert app_client.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS).status_code == 200
    assert app_client.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Host": "evil.example"}).status_code == 421


def test_serving_mcp_beyond_loopback_needs_a_token(tmp_path: Path):
    core = make_core(tmp_path, OpenAIStandIn(), host="0.0.0.0")
    with pytest.raises(ConfigError, match="MCP_TOKEN"):
        mcp_face(core)


@pytest.mark.anyio
@pytest.mark.parametrize("era", ERAS)
async def test_the_sdk_client_works_over_real_http_with_a_bearer_token(tmp_path: Path, era: str):
    core = make_core(tmp_path, OpenAIStandIn(), mcp_token=SecretStr(TOKEN))
    with serve_in_thread(build_app(core, faces=[mcp_face(core)])) as server:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        async with http, Client(streamable_http_client(f"{server.url}/mcp", http_client=http), mode=era) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            health = await client.call_tool("health", {"probe": False})
            reply = await client.call_tool("run_prompt", {"prompt": "When is rent due?"})
    assert {"health", "list_models", "run_prompt", "deploy"} <= tools
    assert health.structured_content and health.structured_content["figures"]["active_model"] == "jamie"
    assert reply.structured_content and reply.structured_content["text"] == "Rent is due on the first."
