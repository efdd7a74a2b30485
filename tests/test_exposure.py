"""Defaults that protect people: what counts as beyond loopback, the start-up refusal, Host checks,
token-guarded reads, and no secret or tenant data in replies to unauthenticated requests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pete_mcp.app import check_bind_safety
from pete_mcp.core import ConfigError
from pete_mcp.core.settings import Settings
from tests.support.hostile import GATEWAY_SECRETS, Gateway, running_gateway

DASH = {"Authorization": f"Bearer {GATEWAY_SECRETS['mcp_token']}"}


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"host": "0.0.0.0"}, "HOST=0.0.0.0"),
        ({"public_url": "https://abc.trycloudflare.com"}, "PUBLIC_URL is set"),
        ({"allowed_hosts": "localhost,pete.example.com"}, "ALLOWED_HOSTS names pete.example.com"),
    ],
)
def test_a_public_url_a_public_allowed_host_or_a_wide_bind_refuses_to_start_without_auth(
    values: dict[str, Any], reason: str
) -> None:
    settings = Settings.model_validate(values)
    assert settings.binds_beyond_loopback
    with pytest.raises(ConfigError) as caught:
        check_bind_safety(settings)
    assert reason in str(caught.value)
    # PUBLIC_URL turns Pete's sign-in on, which protects /mcp; VAPI still needs its own auth.
    assert "VAPI auth (VAPI_AUTH and VAPI_SECRET)" in str(caught.value)
    if "public_url" not in values:
        assert "MCP_TOKEN" in str(caught.value)


def test_loopback_names_in_allowed_hosts_stay_on_loopback() -> None:
    settings = Settings(allowed_hosts="localhost, 127.0.0.1,[::1]")
    assert not settings.binds_beyond_loopback
    check_bind_safety(settings)


def test_beyond_loopback_starts_once_both_credentials_are_set() -> None:
    settings = Settings.model_validate(
        {"public_url": "https://pete.example.com", "mcp_token": "t", "vapi_auth": "bearer", "vapi_secret": "s"}
    )
    check_bind_safety(settings)


def test_only_vapi_auth_missing_is_named_alone() -> None:
    settings = Settings.model_validate({"host": "0.0.0.0", "mcp_token": "t"})
    with pytest.raises(ConfigError, match=r"but VAPI auth \(VAPI_AUTH and VAPI_SECRET\) is not set"):
        check_bind_safety(settings)


@pytest.fixture
def exposed(tmp_path: Path) -> Iterator[Gateway]:
    """The gateway as a tunnel would see it: PUBLIC_URL set, every credential configured."""
    with running_gateway(tmp_path, public_url="https://pete.example.com") as gw:
        yield gw


@pytest.mark.parametrize("path", ["/api/metrics", "/api/models", "/api/health", "/metrics", "/api/events"])
def test_dashboard_reads_need_the_token_beyond_loopback(exposed: Gateway, path: str) -> None:
    host = {"Host": "pete.example.com"}
    refused = exposed.get(path, host)
    assert refused.status_code == 401
    message = refused.json()["error"]["message"]
    assert message == "This action needs the MCP_TOKEN (or a signed-in token) as a Bearer token."
    if path != "/api/events":  # an SSE stream: its refusal is what is asserted here
        assert exposed.get(path, {**host, **DASH}).status_code == 200


def test_the_event_stream_takes_the_token_as_a_query_parameter_for_eventsource(exposed: Gateway) -> None:
    token = GATEWAY_SECRETS["mcp_token"]

    async def first_line() -> tuple[int, str]:
        async with exposed.client.stream(
            "GET", f"/api/events?access_token={token}", headers={"Host": "pete.example.com"}
        ) as response:
            async for line in response.aiter_lines():
                return response.status_code, line
        return response.status_code, ""

    assert exposed.portal.call(first_line) == (200, "retry: 1000")


def test_dashboard_reads_stay_open_on_loopback(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as gw:
        assert gw.get("/api/metrics").status_code == 200


@pytest.mark.parametrize("path", ["/api/metrics", "/vapi/webhook", "/", "/openapi.json"])
def test_a_foreign_host_gets_421_on_the_vapi_and_dashboard_routes(exposed: Gateway, path: str) -> None:
    response = exposed.get(path, {"Host": "evil.example.net", **DASH})
    assert response.status_code == 421
    assert "ALLOWED_HOSTS" in response.json()["error"]["message"]


def test_the_public_url_host_and_loopback_are_served(exposed: Gateway) -> None:
    assert exposed.get("/healthz", {"Host": "anything.example.net"}).status_code == 200  # load balancers
    assert exposed.get("/api/models", {"Host": "pete.example.com:443", **DASH}).status_code == 200
    assert exposed.get("/api/models", {"Host": "127.0.0.1:8765", **DASH}).status_code == 200


# --- the assistant-request reply ----------------------------------------------------------------

ASSISTANT_REQUEST = {
    "message": {
        "type": "assistant-request",
        "call": {"id": "c-1", "type": "inboundPhoneCall"},
        "customer": {"number": "+15551234567"},
    }
}


def _assistant(gw: Gateway, headers: dict[str, str]) -> dict[str, Any]:
    """The reply for +15551234567, whom the store's seed data knows as Dana Ruiz of unit 4B."""
    response = gw.post("/vapi/webhook", json.dumps(ASSISTANT_REQUEST).encode(), headers)
    assert response.status_code == 200
    return response.json()


def test_an_unauthenticated_assistant_request_gets_no_llm_key_and_no_tenant(tmp_path: Path) -> None:
    with running_gateway(tmp_path, vapi_auth="none", vapi_llm_secret=SecretStr("llm-key-XYZ")) as gw:
        reply = _assistant(gw, {})
    text = json.dumps(reply)
    assert "llm-key-XYZ" not in text
    assert "headers" not in reply["assistant"]["model"]
    assert reply["assistantOverrides"]["variableValues"] == {}
    assert "Dana" not in text and "4B" not in text


def test_an_authenticated_assistant_request_gets_the_key_and_the_tenant(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as gw:
        reply = _assistant(gw, {"Authorization": f"Bearer {GATEWAY_SECRETS['vapi_secret']}"})
    assert reply["assistant"]["model"]["headers"] == {"X-Vapi-Secret": GATEWAY_SECRETS["vapi_secret"]}
    assert reply["assistantOverrides"]["variableValues"]["tenantName"] == "Dana Ruiz"


# --- redaction: no secret setting leaks to an unauthenticated caller or the log -----------------

SECRET_VALUES = {
    name: f"SECRET-{name.upper()}-c0ffee"
    for name, info in Settings.model_fields.items()
    if info.annotation is not None and "SecretStr" in str(info.annotation)
}


def test_every_secret_setting_is_covered_by_the_redaction_test() -> None:
    assert {"mcp_token", "vapi_secret", "vapi_llm_secret", "runpod_api_key", "local_api_key"} <= set(SECRET_VALUES)


def test_no_secret_setting_appears_in_any_reply_to_unauthenticated_requests_or_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # DATABASE_URL must reach a database to start at all; its redaction has its own test below.
    overrides: dict[str, Any] = {n: SecretStr(v) for n, v in SECRET_VALUES.items() if n != "database_url"}
    overrides["vapi_auth"] = "bearer"
    seen: list[str] = []
    chat = json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream": False}).encode()
    with running_gateway(tmp_path, public_url="https://pete.example.com", **overrides) as gw:
        for path in ("/healthz", "/openapi.json", "/api/metrics", "/api/models", "/api/health", "/metrics", "/"):
            response = gw.get(path, {"Host": "pete.example.com"})
            seen.append(str(response.headers) + response.text)
        posts = [
            ("/vapi/webhook", json.dumps(ASSISTANT_REQUEST).encode()),
            ("/vapi/chat/completions", chat),
            ("/api/switch", b'{"model": "gemma"}'),
            ("/api/deploy", b'{"image": "x"}'),
            ("/mcp", b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'),
        ]
        for path, body in posts:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Vapi-Secret": "wrong"}):
                response = gw.post(
                    path, body, {"Host": "pete.example.com", "content-type": "application/json", **headers}
                )
                assert response.status_code in (401, 403), (path, response.status_code)
                seen.append(str(response.headers) + response.text)
    everything = "\n".join(seen) + "\n" + caplog.text
    leaked = [name for name, value in SECRET_VALUES.items() if value in everything]
    assert leaked == []


@pytest.mark.parametrize(
    "url",
    [
        "SECRET-DATABASE_URL-c0ffee",  # a typo: drivers quote a malformed URL back whole
        "host=127.0.0.1 port=1 password=SECRET-DATABASE_URL-c0ffee",  # a libpq keyword string
        "postgresql://pete:SECRET-DATABASE_URL-c0ffee@127.0.0.1:1/pete",  # nothing listens on port 1
    ],
)
def test_a_database_url_that_cannot_be_used_is_never_echoed(url: str) -> None:
    from pete_mcp.core import ConfigError
    from pete_mcp.core.storage import engine_from_settings

    engine = engine_from_settings(Settings.model_validate({"database_url": SecretStr(url), "database_timeout_s": 1}))
    with pytest.raises(ConfigError) as refused:
        engine.open()
    assert "SECRET-DATABASE_URL" not in str(refused.value) and "DATABASE_URL" in str(refused.value)
