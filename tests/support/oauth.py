"""Sign-in test support: Pete with its OAuth server on a loopback port, and a test that plays the browser.

`PeteAuthServer` serves the real app (MCP face + auth face) under uvicorn on a port chosen up
front, because the issuer and the /mcp resource URL are built from it. `Browser` follows
/authorize to the consent page, reads its form and posts it, as a person would, and returns
the redirect back to the client (code, state, iss — or error).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx
from pydantic import SecretStr

from pete_mcp.app import build_app
from pete_mcp.faces.auth import Operators, auth_face
from pete_mcp.faces.dashboard import dashboard_face
from pete_mcp.faces.mcp import mcp_face
from pete_mcp.gateway import Core
from pete_mcp.local.model_server import pick_free_port
from tests.support.mcp import OpenAIStandIn, make_core, serve_in_thread

STATIC_TOKEN = "static-token-for-tests"
OPERATOR, PASSWORD = "alice", "correct horse battery staple"
REDIRECT = "http://127.0.0.1:9/callback"  # never contacted: the test reads the redirect itself
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


@dataclass
class PeteAuthServer:
    core: Core
    url: str

    @property
    def resource(self) -> str:
        return f"{self.url}/mcp"

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def register(self, http: httpx.Client, **metadata: Any) -> dict[str, Any]:
        body = {"redirect_uris": [REDIRECT], "client_name": "Test client", **metadata}
        response = http.post("/register", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def authorize_url(self, client_id: str, challenge: str, **extra: str) -> str:
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "st-1",
            "resource": self.resource,
            **extra,
        }
        return f"{self.url}/authorize?{urlencode({k: v for k, v in params.items() if v != ''})}"

    def sign_in(self, http: httpx.Client, authorize_url: str, **form: Any) -> dict[str, str]:
        """Play the browser through consent; returns the query of the redirect back to the client."""
        first = http.get(authorize_url)
        assert first.status_code == 302, first.text
        page = http.get(first.headers["location"])
        assert page.status_code == 200, page.text
        response = post_consent(http, page.text, **form)
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        assert location.startswith(REDIRECT.split("?")[0]), location
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def token(self, http: httpx.Client, **form: str) -> httpx.Response:
        return http.post("/token", data=form)

    def full_grant(self, http: httpx.Client, scopes: list[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Register (public client), sign in, exchange: returns (client, token response)."""
        client = self.register(http, token_endpoint_auth_method="none")
        verifier, challenge = pkce()
        answer = self.sign_in(http, self.authorize_url(client["client_id"], challenge), scopes=scopes)
        response = self.token(
            http,
            grant_type="authorization_code",
            code=answer["code"],
            redirect_uri=REDIRECT,
            client_id=client["client_id"],
            code_verifier=verifier,
        )
        assert response.status_code == 200, response.text
        return client, response.json()

    def mcp_status(self, http: httpx.Client, token: str) -> int:
        return http.post(
            "/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"}
        ).status_code


def consent_fields(page: str) -> dict[str, str]:
    fields = dict(re.findall(r"<input type=hidden name=(\w+) value='([^']*)'>", page))
    assert {"request", "csrf"} <= fields.keys(), page
    return fields


def post_consent(
    http: httpx.Client,
    page: str,
    *,
    name: str = OPERATOR,
    password: str = PASSWORD,
    action: str = "approve",
    scopes: list[str] | None = None,
    csrf: str | None = None,
) -> httpx.Response:
    fields = consent_fields(page)
    offered = re.findall(r"name=scope value='([^']*)'", page)
    form: dict[str, Any] = {
        "request": fields["request"],
        "csrf": csrf if csrf is not None else fields["csrf"],
        "name": name,
        "password": password,
        "action": action,
        "scope": scopes if scopes is not None else offered,
    }
    return http.post("/authorize/consent", data=form)


@contextmanager
def pete_auth_server(
    tmp_path: Path, *, cimd_http: httpx.AsyncClient | None = None, **settings: Any
) -> Iterator[PeteAuthServer]:
    """Pete (MCP, OAuth server, dashboard API; MCP_TOKEN set) on a loopback port, with operator alice (all scopes)."""
    port = settings.pop("port", None) or pick_free_port()
    options: dict[str, Any] = {
        "mcp_token": SecretStr(STATIC_TOKEN),
        "oauth_server": True,
        "port": port,
        "oauth_cimd_allow_loopback": True,
        **settings,
    }
    core = make_core(tmp_path, OpenAIStandIn(), **options)
    faces = [mcp_face(core), auth_face(core, cimd_http=cimd_http), dashboard_face(core, services=False)]
    app = build_app(core, faces=faces)
    with serve_in_thread(app, port=port) as server:
        adding = threading.Thread(target=anyio.run, args=(_add_operator, core))  # works inside a test's loop too
        adding.start()
        adding.join(30)
        yield PeteAuthServer(core, server.url)


async def _add_operator(core: Core) -> None:
    await Operators(core.store).add(OPERATOR, PASSWORD)
