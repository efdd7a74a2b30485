"""An external identity provider: JWT access tokens checked against its JWKS (signature, iss, aud, exp,
scopes); Pete then advertises that issuer and runs no authorization server of its own.

The IdP is an external service, so it is a stand-in behind `httpx.MockTransport` serving its
OpenID discovery document and JWKS, with keys made here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from starlette.testclient import TestClient

from pete_mcp.app import build_app
from pete_mcp.faces.auth import auth_plan
from pete_mcp.faces.auth.verifiers import JwtVerifier
from pete_mcp.faces.mcp import mcp_face
from tests.support.mcp import OpenAIStandIn, make_core
from tests.support.oauth import INITIALIZE, MCP_HEADERS

pytestmark = pytest.mark.anyio

ISSUER = "https://login.example.com/"
RESOURCE = "http://127.0.0.1:8765/mcp"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def idp_transport() -> httpx.MockTransport:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    jwks = {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": "https://login.example.com/jwks"})
        if request.url.path == "/jwks":
            return httpx.Response(200, json=jwks)
        return httpx.Response(404)

    return httpx.MockTransport(handler)


def token(key: Any = KEY, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": RESOURCE, "sub": "dana", "exp": now + 300, "iat": now, "scope": "pete:read"}
    return jwt.encode({**body, **claims}, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
async def verifier() -> Any:
    async with httpx.AsyncClient(transport=idp_transport()) as http:
        yield JwtVerifier(http, issuer=ISSUER, audience=RESOURCE, resource=RESOURCE, jwks_url=None)


async def test_a_good_jwt_is_accepted_with_its_scopes(verifier: JwtVerifier):
    found = await verifier.verify_token(token(scope="pete:read pete:operate other:scope"))
    assert found is not None and found.subject == "dana" and found.resource == RESOURCE
    assert found.scopes == ["pete:read", "pete:operate"]


@pytest.mark.parametrize(
    "bad",
    [
        {"aud": "https://another.example/mcp"},
        {"iss": "https://evil.example/"},
        {"exp": int(time.time()) - 3600},
        {"key": OTHER_KEY},
        {"kid": "unknown"},
    ],
    ids=["other audience", "other issuer", "expired", "forged signature", "unknown key"],
)
async def test_a_bad_jwt_is_refused(verifier: JwtVerifier, bad: dict[str, Any]):
    options = dict(bad)
    key, kid = options.pop("key", KEY), options.pop("kid", "k1")
    assert await verifier.verify_token(token(key, kid, **options)) is None


async def test_an_unsigned_jwt_is_refused(verifier: JwtVerifier):
    unsigned = jwt.encode({"iss": ISSUER, "aud": RESOURCE, "exp": int(time.time()) + 60}, None, algorithm="none")
    assert await verifier.verify_token(unsigned) is None


@pytest.fixture
def external_app(tmp_path: Path) -> Iterator[TestClient]:
    core = make_core(tmp_path, OpenAIStandIn(), oauth_issuer=ISSUER, mcp_token=SecretStr("static"))
    with TestClient(build_app(core, faces=[mcp_face(core)]), base_url="http://127.0.0.1:8765") as client:
        yield client


def test_with_an_external_issuer_pete_advertises_it_and_runs_no_server_of_its_own(external_app: TestClient):
    prm = external_app.get("/.well-known/oauth-protected-resource/mcp").json()
    assert prm["authorization_servers"] == [ISSUER] and prm["resource"] == RESOURCE
    assert external_app.get("/.well-known/oauth-authorization-server").status_code == 404
    assert external_app.get("/authorize").status_code == 404
    static = external_app.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer static"})
    assert static.status_code == 200


def test_the_built_in_server_and_an_external_issuer_cannot_both_be_on(tmp_path: Path):
    from pete_mcp.core import ConfigError, Settings

    with pytest.raises(ConfigError, match="one or the other"):
        auth_plan(Settings(data_dir=tmp_path, oauth_server=True, oauth_issuer=ISSUER))


def test_public_url_turns_the_built_in_server_on_by_default(tmp_path: Path):
    from pete_mcp.core import Settings

    assert auth_plan(Settings(data_dir=tmp_path, public_url="https://pete.example.com")).mode == "builtin"
    assert auth_plan(Settings(data_dir=tmp_path)).mode == "open"
    assert auth_plan(Settings(data_dir=tmp_path, mcp_token=SecretStr("t"))).mode == "static"
