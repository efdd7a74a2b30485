"""Sign-in end to end: the MCP SDK's own OAuth client against Pete's OAuth server over real HTTP.

The SDK client discovers the protected-resource and authorization-server metadata, registers by
Dynamic Client Registration (or presents a Client ID Metadata Document URL), sends the browser to
/authorize with PKCE; the test plays the browser through the consent page; the client exchanges
the code and calls tools over /mcp with the token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
import trustme
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pete_mcp.local.model_server import pick_free_port
from tests.support.mcp import serve_in_thread
from tests.support.oauth import OPERATOR, PASSWORD, REDIRECT, PeteAuthServer, consent_fields, pete_auth_server

pytestmark = pytest.mark.anyio


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class PlaysTheBrowser:
    """The SDK's redirect and callback handlers: open the URL, sign in on the consent page, return the code."""

    def __init__(self, pete: PeteAuthServer, scopes: list[str] | None = None) -> None:
        self.pete = pete
        self.scopes = scopes
        self.url = ""
        self.consent_pages = 0

    async def redirect(self, url: str) -> None:
        self.url = url

    async def callback(self) -> AuthorizationCodeResult:
        async with httpx.AsyncClient(base_url=self.pete.url, timeout=30) as http:
            first = await http.get(self.url)
            page = await http.get(first.headers["location"])
            self.consent_pages += 1
            offered = re.findall(r"name=scope value='([^']*)'", page.text)
            form: dict[str, Any] = {
                **consent_fields(page.text),
                "name": OPERATOR,
                "password": PASSWORD,
                "action": "approve",
                "scope": self.scopes or offered,
            }
            answer = await http.post("/authorize/consent", data=form)
        assert answer.status_code == 303, answer.text
        query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


def metadata(**extra: Any) -> OAuthClientMetadata:
    return OAuthClientMetadata(
        redirect_uris=[AnyUrl(REDIRECT)],
        client_name="SDK test client",
        grant_types=["authorization_code", "refresh_token"],
        **extra,
    )


async def call_tools(pete: PeteAuthServer, auth: OAuthClientProvider) -> tuple[set[str], Any]:
    http = httpx2.AsyncClient(auth=auth, timeout=30)
    async with http, Client(streamable_http_client(pete.resource, http_client=http), mode="legacy") as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        health = await client.call_tool("health", {"probe": False})
    return tools, health


async def test_the_sdk_oauth_client_registers_by_dcr_signs_in_and_calls_tools(tmp_path: Path):
    with pete_auth_server(tmp_path) as pete:
        browser, storage = PlaysTheBrowser(pete), MemoryStorage()
        auth = OAuthClientProvider(pete.resource, metadata(), storage, browser.redirect, browser.callback)
        tools, health = await call_tools(pete, auth)
    assert {"health", "deploy", "run_prompt"} <= tools
    assert not health.is_error and health.structured_content is not None
    assert browser.consent_pages == 1
    assert storage.client_info is not None and storage.client_info.client_secret  # DCR, confidential client
    assert storage.tokens is not None and storage.tokens.refresh_token
    assert set((storage.tokens.scope or "").split()) == {"pete:read", "pete:operate", "pete:deploy"}


async def test_the_sdk_oauth_client_signs_in_with_a_client_id_metadata_document(tmp_path: Path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    doc_port = pick_free_port()
    doc_url = f"https://127.0.0.1:{doc_port}/oauth/client.json"
    fetched: list[str] = []

    async def document(request: Request) -> JSONResponse:
        fetched.append(request.url.path)
        return JSONResponse(
            {
                "client_id": doc_url,
                "client_name": "CIMD test client",
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
            }
        )

    with (
        cert.private_key_and_cert_chain_pem.tempfile() as pem,
        serve_in_thread(
            Starlette(routes=[Route("/oauth/client.json", document)]), port=doc_port, ssl_certfile=pem, ssl_keyfile=pem
        ),
    ):
        verify = httpx.create_ssl_context()
        ca.configure_trust(verify)
        async with httpx.AsyncClient(verify=verify, trust_env=False) as cimd_http:
            with pete_auth_server(tmp_path, cimd_http=cimd_http) as pete:
                meta = (await httpx.AsyncClient().get(f"{pete.url}/.well-known/oauth-authorization-server")).json()
                browser, storage = PlaysTheBrowser(pete), MemoryStorage()
                auth = OAuthClientProvider(
                    pete.resource, metadata(), storage, browser.redirect, browser.callback, client_metadata_url=doc_url
                )
                tools, health = await call_tools(pete, auth)
    assert meta["client_id_metadata_document_supported"] is True
    assert storage.client_info is not None and storage.client_info.client_id == doc_url  # no DCR happened
    assert fetched == ["/oauth/client.json"]  # fetched once, then cached
    assert "deploy" in tools and not health.is_error


async def test_a_read_only_sign_in_is_refused_deploy_with_the_scope_it_needs(tmp_path: Path):
    with pete_auth_server(tmp_path) as pete:
        browser = PlaysTheBrowser(pete, scopes=["pete:read"])
        auth = OAuthClientProvider(pete.resource, metadata(), MemoryStorage(), browser.redirect, browser.callback)
        http = httpx2.AsyncClient(auth=auth, timeout=30)
        async with http, Client(streamable_http_client(pete.resource, http_client=http), mode="legacy") as client:
            health = await client.call_tool("health", {"probe": False})
            deploy = await client.call_tool("deploy", {"image": "r/w:1.0.0", "confirm": True})
            prompt = await client.call_tool("run_prompt", {"prompt": "hi"})
            metrics = await client.read_resource("pete://metrics/live")
    assert not health.is_error and metrics.contents
    assert deploy.is_error and "pete:deploy" in deploy.content[0].text  # type: ignore[union-attr]
    assert prompt.is_error and "pete:operate" in prompt.content[0].text  # type: ignore[union-attr]


def test_the_static_mcp_token_still_has_every_scope(tmp_path: Path):
    with pete_auth_server(tmp_path) as pete, pete.http() as http:
        assert pete.mcp_status(http, "static-token-for-tests") == 200
        response = http.post(
            "/api/deploy", json={"image": "r/w:1"}, headers={"Authorization": "Bearer static-token-for-tests"}
        )
    assert response.status_code != 403 and "scope" not in response.text


def test_discovery_names_pete_as_the_authorization_server_and_lists_every_scope(tmp_path: Path):
    with pete_auth_server(tmp_path) as pete, pete.http() as http:
        unauthenticated = http.post("/mcp", json={}, headers={"Content-Type": "application/json"})
        prm = http.get("/.well-known/oauth-protected-resource/mcp").json()
        asm = http.get("/.well-known/oauth-authorization-server").json()
    assert unauthenticated.status_code == 401
    assert (
        f'resource_metadata="{pete.url}/.well-known/oauth-protected-resource/mcp"'
        in unauthenticated.headers["www-authenticate"]
    )
    assert prm["resource"] == pete.resource and prm["authorization_servers"] == [pete.url]
    assert prm["scopes_supported"] == ["pete:read", "pete:operate", "pete:deploy"]
    assert asm["issuer"] == pete.url and asm["code_challenge_methods_supported"] == ["S256"]
    assert asm["registration_endpoint"] == f"{pete.url}/register" and asm["revocation_endpoint"] == f"{pete.url}/revoke"


def test_clients_grants_and_tokens_survive_a_restart(tmp_path: Path):
    port = pick_free_port()
    with pete_auth_server(tmp_path, port=port) as pete, pete.http() as http:
        client, tokens = pete.full_grant(http)
    with (
        pete_auth_server(tmp_path, port=port) as again,
        again.http() as http,
    ):  # same store and URL, fresh process state
        still_valid = again.mcp_status(http, tokens["access_token"])
        refreshed = again.token(
            http, grant_type="refresh_token", refresh_token=tokens["refresh_token"], client_id=client["client_id"]
        )
    assert still_valid == 200
    assert refreshed.status_code == 200 and refreshed.json()["refresh_token"] != tokens["refresh_token"]
