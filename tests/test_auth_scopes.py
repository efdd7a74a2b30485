"""The one scope table covers every tool and dashboard action; tokens are checked against it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.routing import Route

from pete_mcp.faces.auth import DASHBOARD_SCOPES, TOOL_SCOPES
from pete_mcp.faces.dashboard import dashboard_face
from pete_mcp.faces.mcp import build_mcp_server
from tests.support.mcp import OpenAIStandIn, make_core
from tests.support.oauth import pete_auth_server

pytestmark = pytest.mark.anyio


async def test_every_registered_tool_has_a_scope(tmp_path: Path):
    core = make_core(tmp_path, OpenAIStandIn())
    tools = {tool.name for tool in await build_mcp_server(core).list_tools()}
    missing = sorted(tools - TOOL_SCOPES.keys())
    assert not missing, (
        f"tools without a scope: {missing}. Add each to TOOL_SCOPES in src/pete_mcp/faces/auth/scopes.py "
        "(pete:read looks, pete:operate acts on traffic, pete:deploy changes the endpoint); until then no "
        "OAuth token may call them."
    )
    assert not sorted(TOOL_SCOPES.keys() - tools), "TOOL_SCOPES names a tool that no longer exists"


def test_every_dashboard_action_checked_in_the_code_has_a_scope_and_every_scope_is_used() -> None:
    faces = Path(__file__).resolve().parents[1] / "src" / "pete_mcp" / "faces"
    used = set()
    for module in faces.glob("*.py"):
        used |= set(re.findall(r"refuse(?:_read)?\(request, \"(\w+)\"", module.read_text()))
    used.add("read")  # refuse_read's own action
    assert used == DASHBOARD_SCOPES.keys()


async def test_every_dashboard_post_is_refused_without_a_token(tmp_path: Path):
    import httpx

    from pete_mcp.app import build_app

    core = make_core(tmp_path, OpenAIStandIn(), mcp_token=SecretStr("dash-token"))
    face = dashboard_face(core, services=False)
    posts = [
        r.path
        for r in face.routes
        if isinstance(r, Route) and r.path.startswith("/api/") and "POST" in (r.methods or ())
    ]
    app = build_app(core, faces=[face])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as http:
            refused = {}
            for path in posts:
                concrete = re.sub(r"\{kind\}", "tickets", re.sub(r"\{\w+\}", "1", path))
                refused[path] = (await http.post(concrete, json={})).status_code
    assert posts and all(status in (401, 403) for status in refused.values()), refused


def test_a_read_only_token_is_refused_dashboard_deploy_naming_pete_deploy(tmp_path: Path):
    with pete_auth_server(tmp_path) as pete, pete.http() as http:
        _, tokens = pete.full_grant(http, scopes=["pete:read"])
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        deploy = http.post("/api/deploy", json={"image": "r/w:1"}, headers=bearer)
        logs = http.get("/api/logs", headers=bearer)
        garbage = http.get("/api/logs", headers={"Authorization": "Bearer pa_nonsense"})
    assert deploy.status_code == 403 and deploy.json()["error"]["code"] == "insufficient_scope"
    assert "pete:deploy" in deploy.json()["error"]["message"]
    assert logs.status_code == 200
    assert garbage.status_code == 401
