"""Every bad sign-in input is refused with the error its RFC names, nothing is issued, and the
attempt is logged without the secret (RFC 6749 §4.1.2.1/§5.2, RFC 7636 §4.6, RFC 7009, RFC 8707)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest

from pete_mcp.faces.auth._records import Records
from pete_mcp.local.model_server import pick_free_port
from tests.support.oauth import (
    PASSWORD,
    REDIRECT,
    PeteAuthServer,
    pete_auth_server,
    pkce,
    post_consent,
)


@pytest.fixture(scope="module")
def pete(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeteAuthServer]:
    with pete_auth_server(tmp_path_factory.mktemp("auth"), oauth_signin_max_failures=3) as server:
        yield server


@pytest.fixture
def http(pete: PeteAuthServer) -> Iterator[httpx.Client]:
    with pete.http() as client:
        yield client


def consent_page(pete: PeteAuthServer, http: httpx.Client, client_id: str, challenge: str) -> str:
    first = http.get(pete.authorize_url(client_id, challenge))
    assert first.status_code == 302
    return http.get(first.headers["location"]).text


def exchange(
    pete: PeteAuthServer, http: httpx.Client, client_id: str, code: str, verifier: str | None
) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client_id}
    if verifier is not None:
        form["code_verifier"] = verifier
    return pete.token(http, **form)


def test_a_wrong_password_is_refused_logged_without_it_and_issues_no_code(
    pete: PeteAuthServer, http: httpx.Client, caplog: pytest.LogCaptureFixture
):
    client = pete.register(http, token_endpoint_auth_method="none")
    page = consent_page(pete, http, client["client_id"], pkce()[1])
    with caplog.at_level(logging.INFO):
        response = post_consent(http, page, name="bob", password="not-the-password-123")
    assert response.status_code == 401 and "Wrong name or password" in response.text
    assert "location" not in response.headers
    assert "sign-in failed for 'bob'" in caplog.text and "not-the-password-123" not in caplog.text


def test_sign_in_is_rate_limited_per_account(pete: PeteAuthServer, http: httpx.Client):
    client = pete.register(http, token_endpoint_auth_method="none")
    page = consent_page(pete, http, client["client_id"], pkce()[1])
    statuses = []
    for _ in range(3):
        response = post_consent(http, page, name="carol", password="wrong-password-123")
        statuses.append(response.status_code)
        page = response.text  # the form again, with a fresh CSRF token
    locked = post_consent(http, page, name="carol", password=PASSWORD)
    assert statuses == [401, 401, 401]
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0 and "location" not in locked.headers


def test_an_unknown_client_is_refused_at_authorize_and_token(pete: PeteAuthServer, http: httpx.Client):
    authorize = http.get(pete.authorize_url("no-such-client", pkce()[1]))
    token = exchange(pete, http, "no-such-client", "pc_whatever", "v" * 43)
    assert authorize.status_code == 400 and authorize.json()["error"] == "invalid_request"
    assert token.status_code == 401 and token.json()["error"] == "invalid_client"


def test_a_redirect_uri_not_registered_is_refused_without_redirecting(pete: PeteAuthServer, http: httpx.Client):
    client = pete.register(http, token_endpoint_auth_method="none")
    response = http.get(pete.authorize_url(client["client_id"], pkce()[1], redirect_uri="http://127.0.0.1:9/other"))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert "location" not in response.headers


def test_registration_refuses_a_plain_http_redirect_outside_loopback(http: httpx.Client):
    response = http.post("/register", json={"redirect_uris": ["http://attacker.example/cb"]})
    assert response.status_code == 400 and response.json()["error"] == "invalid_redirect_uri"


def test_authorize_without_pkce_or_with_plain_pkce_is_refused(pete: PeteAuthServer, http: httpx.Client):
    client = pete.register(http, token_endpoint_auth_method="none")
    missing = http.get(pete.authorize_url(client["client_id"], ""))
    plain = http.get(pete.authorize_url(client["client_id"], "x" * 43, code_challenge_method="plain"))
    for response in (missing, plain):
        assert response.status_code == 302
        assert "error=invalid_request" in response.headers["location"]


def test_a_missing_or_wrong_code_verifier_is_refused(pete: PeteAuthServer, http: httpx.Client):
    client = pete.register(http, token_endpoint_auth_method="none")
    verifier, challenge = pkce()
    answer = pete.sign_in(http, pete.authorize_url(client["client_id"], challenge))
    missing = exchange(pete, http, client["client_id"], answer["code"], None)
    wrong = exchange(pete, http, client["client_id"], answer["code"], pkce()[0])
    right = exchange(pete, http, client["client_id"], answer["code"], verifier)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert right.status_code == 200  # the failed tries did not burn the code


def test_a_reused_code_is_refused_and_revokes_what_it_issued(pete: PeteAuthServer, http: httpx.Client):
    client = pete.register(http, token_endpoint_auth_method="none")
    verifier, challenge = pkce()
    answer = pete.sign_in(http, pete.authorize_url(client["client_id"], challenge))
    first = exchange(pete, http, client["client_id"], answer["code"], verifier)
    assert pete.mcp_status(http, first.json()["access_token"]) == 200
    again = exchange(pete, http, client["client_id"], answer["code"], verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert pete.mcp_status(http, first.json()["access_token"]) == 401


def test_a_confidential_client_with_a_wrong_secret_is_refused(pete: PeteAuthServer, http: httpx.Client):
    client = pete.register(http)  # client_secret_post
    assert client["client_secret"]
    verifier, challenge = pkce()
    answer = pete.sign_in(http, pete.authorize_url(client["client_id"], challenge))
    form = {"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": REDIRECT}
    form |= {"client_id": client["client_id"], "code_verifier": verifier}
    wrong = pete.token(http, **form, client_secret="not-it")
    right = pete.token(http, **form, client_secret=client["client_secret"])
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert right.status_code == 200


def test_a_denied_consent_redirects_with_access_denied(pete: PeteAuthServer, http: httpx.Client):
    client = pete.register(http, token_endpoint_auth_method="none")
    page = consent_page(pete, http, client["client_id"], pkce()[1])
    response = post_consent(http, page, action="deny")
    assert response.status_code == 303
    assert "error=access_denied" in response.headers["location"] and "state=st-1" in response.headers["location"]


def test_a_consent_post_with_a_forged_csrf_token_is_refused(pete: PeteAuthServer, http: httpx.Client):
    client = pete.register(http, token_endpoint_auth_method="none")
    page = consent_page(pete, http, client["client_id"], pkce()[1])
    assert post_consent(http, page, csrf="forged").status_code == 403
    http.cookies.clear()  # a cross-site post carries no SameSite=Strict cookie
    assert post_consent(http, page).status_code == 403


def test_a_revoked_token_is_refused_and_so_is_its_refresh_token(pete: PeteAuthServer, http: httpx.Client):
    client, tokens = pete.full_grant(http)
    # the SDK's RevocationRequest requires the client_secret field to be present, even empty for a public client
    form = {"token": tokens["access_token"], "client_id": client["client_id"], "client_secret": ""}
    revoke = http.post("/revoke", data=form)
    assert revoke.status_code == 200
    assert pete.mcp_status(http, tokens["access_token"]) == 401
    refresh = pete.token(
        http, grant_type="refresh_token", refresh_token=tokens["refresh_token"], client_id=client["client_id"]
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


def test_a_rotated_refresh_token_used_again_is_refused_and_revokes_the_grant(pete: PeteAuthServer, http: httpx.Client):
    client, tokens = pete.full_grant(http)
    form = {"grant_type": "refresh_token", "client_id": client["client_id"]}
    rotated = pete.token(http, **form, refresh_token=tokens["refresh_token"])
    assert rotated.status_code == 200 and rotated.json()["refresh_token"] != tokens["refresh_token"]
    replay = pete.token(http, **form, refresh_token=tokens["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert pete.mcp_status(http, rotated.json()["access_token"]) == 401  # the whole grant is gone


def test_an_expired_access_token_is_refused(pete: PeteAuthServer, http: httpx.Client):
    _, tokens = pete.full_grant(http)
    assert pete.mcp_status(http, tokens["access_token"]) == 200
    from pete_mcp.faces.auth._records import digest

    anyio.run(
        pete.core.store.execute,
        "UPDATE oauth_tokens SET expires_at = ? WHERE token_hash = ?",
        (time.time() - 1, digest(tokens["access_token"])),
    )
    assert pete.mcp_status(http, tokens["access_token"]) == 401


def test_a_token_for_another_audience_is_refused(pete: PeteAuthServer, http: httpx.Client):
    async def mint() -> None:
        await Records(pete.core.store).add_token(
            "pa_other-audience-token",
            "access",
            grant_id="g_other",
            client_id="someone",
            subject="alice",
            scopes=["pete:read"],
            audience=f"http://127.0.0.1:{pick_free_port()}/mcp",
            ttl_s=600,
        )

    anyio.run(mint)
    assert pete.mcp_status(http, "pa_other-audience-token") == 401


def test_authorize_for_another_resource_is_refused_with_invalid_target(pete: PeteAuthServer, http: httpx.Client):
    client = pete.register(http, token_endpoint_auth_method="none")
    response = http.get(pete.authorize_url(client["client_id"], pkce()[1], resource="https://elsewhere.example/mcp"))
    assert response.status_code == 302 and "error=invalid_target" in response.headers["location"]


def test_a_scope_pete_does_not_have_is_refused(pete: PeteAuthServer, http: httpx.Client):
    client = pete.register(http, token_endpoint_auth_method="none", scope="pete:read")
    response = http.get(pete.authorize_url(client["client_id"], pkce()[1], scope="pete:deploy"))
    assert response.status_code == 302 and "error=invalid_scope" in response.headers["location"]
