"""Client ID Metadata Documents: production policy refuses http and non-public addresses before any
request; a document is fetched with size and time limits and must describe the URL it came from.

Documents are served by a real stand-in on loopback, which only the test-only
`allow_loopback` policy admits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pete_mcp.core import Settings
from pete_mcp.faces.auth.cimd import CimdError, CimdFetcher, CimdPolicy, _acceptable  # pyright: ignore[reportPrivateUsage]
from tests.support.mcp import ThreadedApp, serve_in_thread

pytestmark = pytest.mark.anyio

PRODUCTION = CimdPolicy()
TESTS = CimdPolicy(allow_loopback=True, max_bytes=2048, timeout_s=0.5)
REDIRECT = "http://127.0.0.1:9/callback"


def test_production_settings_do_not_allow_loopback():
    assert Settings().oauth_cimd_allow_loopback is False


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/client.json",  # not https
        "https://127.0.0.1/client.json",  # loopback
        "https://[::1]/client.json",  # loopback
        "https://169.254.169.254/latest",  # link-local (cloud metadata)
        "https://localhost/client.json",  # resolves to loopback
        "https://user:pw@pete.example/client.json",  # user info
        "https://pete.example/",  # no path
        "https://pete.example/a/../client.json",  # dot segment
    ],
)
async def test_production_policy_refuses_before_any_request(url: str):
    with pytest.raises(CimdError):
        await CimdFetcher(PRODUCTION).fetch(url)


def test_only_global_addresses_are_acceptable():
    # Non-global classes without naming a LAN range: unique-local IPv6, shared (CGNAT), multicast,
    # loopback and link-local; each is data for the classifier, never a request's target.
    for address in ("fd00::1", "100.64.0.1", "224.0.0.1", "127.0.0.1", "169.254.169.254"):
        assert not _acceptable(address, PRODUCTION), address
    assert _acceptable("8.8.8.8", PRODUCTION)
    assert _acceptable("127.0.0.1", TESTS) and not _acceptable("fd00::1", TESTS)


async def test_an_allow_list_refuses_other_hosts():
    policy = CimdPolicy(allowed_hosts=frozenset({"claude.ai"}))
    with pytest.raises(CimdError, match="OAUTH_CIMD_ALLOWED_HOSTS"):
        await CimdFetcher(policy).fetch("https://pete.example/client.json")


@pytest.fixture(scope="module")
def documents() -> Iterator[ThreadedApp]:
    def doc(request: Request, **extra: Any) -> dict[str, Any]:
        return {"client_id": str(request.url), "redirect_uris": [REDIRECT], "client_name": "Doc", **extra}

    async def good(request: Request) -> JSONResponse:
        return JSONResponse(doc(request))

    async def mismatched(request: Request) -> JSONResponse:
        return JSONResponse(doc(request, client_id="https://someone.else/client.json"))

    async def with_secret(request: Request) -> JSONResponse:
        return JSONResponse(doc(request, client_secret="s", token_endpoint_auth_method="client_secret_post"))

    async def huge(request: Request) -> JSONResponse:
        return JSONResponse(doc(request, padding="x" * 10_000))

    async def slow(request: Request) -> Response:
        await anyio.sleep(3)  # the fetcher gives up after TESTS.timeout_s
        return JSONResponse(doc(request))

    async def redirect(request: Request) -> Response:
        return Response(status_code=302, headers={"location": "/good.json"})

    routes = [
        Route("/good.json", good),
        Route("/mismatched.json", mismatched),
        Route("/secret.json", with_secret),
        Route("/huge.json", huge),
        Route("/slow.json", slow),
        Route("/redirect.json", redirect),
    ]
    with serve_in_thread(Starlette(routes=routes)) as server:
        yield server


async def test_a_good_document_becomes_a_public_client(documents: ThreadedApp):
    url = f"{documents.url}/good.json"
    client = await CimdFetcher(TESTS).fetch(url)
    assert client.client_id == url and client.token_endpoint_auth_method == "none" and client.client_secret is None
    assert [str(u) for u in client.redirect_uris or ()] == [REDIRECT]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("mismatched.json", "not the URL"),
        ("secret.json", "secret"),
        ("huge.json", "over 2048 bytes"),
        ("slow.json", "took over"),
        ("redirect.json", "HTTP 302"),
        ("missing.json", "HTTP 404"),
    ],
)
async def test_a_bad_document_is_refused(documents: ThreadedApp, path: str, reason: str):
    with pytest.raises(CimdError, match=reason):
        await CimdFetcher(TESTS).fetch(f"{documents.url}/{path}")
