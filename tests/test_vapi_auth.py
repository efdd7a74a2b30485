"""VAPI auth, per scheme: bearer, HMAC (x-signature / x-timestamp), legacy X-Vapi-Secret, and the LLM key."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Message as AsgiMessage

from pete_mcp.core.settings import Settings
from pete_vapi.auth import LlmAuth, ReplayGuard, WebhookAuth
from pete_vapi.custom_llm import CustomLlmEndpoint
from tests.support.scripted import ScriptedProvider
from tests.support.vapi_stack import chat_body, fixture, vapi_stack

pytestmark = pytest.mark.anyio

SECRET = "webhook-secret-0123456789"
LLM_KEY = "llm-key-9876543210"


def signed(body: bytes, *, secret: str = SECRET, stamp: float | None = None, prefix: str = "") -> dict[str, str]:
    ts = str(int(stamp if stamp is not None else time.time()))
    digest = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"x-signature": prefix + digest, "x-timestamp": ts, "content-type": "application/json"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong"}, 401),
        ({"authorization": SECRET}, 200),  # VAPI's prefix is undocumented: bare keys pass too
        ({"authorization": f"Bearer {SECRET}"}, 200),
    ],
    ids=["missing", "wrong", "bare", "bearer"],
)
async def test_bearer_scheme(tmp_path: Path, headers: dict[str, str], status: int) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}, vapi_auth="bearer", vapi_secret=SECRET) as stack:
        response = await stack.webhook(fixture("status_update_in_progress"), headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json()["error"]["code"] == "unauthorized" and SECRET not in response.text


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"x-vapi-secret": "nope"}, 401),
        ({"authorization": f"Bearer {SECRET}"}, 401),
        ({"x-vapi-secret": SECRET}, 200),
    ],
    ids=["missing", "wrong", "bearer-instead", "right"],
)
async def test_legacy_x_vapi_secret_scheme(tmp_path: Path, headers: dict[str, str], status: int) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}, vapi_auth="secret", vapi_secret=SECRET) as stack:
        response = await stack.webhook(fixture("hang"), headers=headers)
    assert response.status_code == status


async def test_hmac_scheme_accepts_a_fresh_signature_once(tmp_path: Path) -> None:
    body = json.dumps(fixture("status_update_in_progress")).encode()
    headers = signed(body)
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}, vapi_auth="hmac", vapi_secret=SECRET) as stack:
        first = await stack.client.post("/vapi/webhook", content=body, headers=headers)
        replay = await stack.client.post("/vapi/webhook", content=body, headers=headers)
        ms_and_prefix = await stack.client.post(
            "/vapi/webhook", content=body, headers=signed(body, stamp=time.time() * 1000, prefix="sha256=")
        )
    assert first.status_code == 200
    assert replay.status_code == 401 and "replayed" in replay.json()["error"]["message"]
    assert ms_and_prefix.status_code == 200


@pytest.mark.parametrize(
    "tamper",
    ["wrong-secret", "expired", "future", "body-changed", "missing-signature", "missing-timestamp", "bad-timestamp"],
)
async def test_hmac_scheme_refuses(tmp_path: Path, tamper: str) -> None:
    body = json.dumps(fixture("status_update_in_progress")).encode()
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}, vapi_auth="hmac", vapi_secret=SECRET) as stack:
        # Signed once the stack is up, so a slow start cannot bring a "future" stamp inside the window.
        headers = {
            "wrong-secret": signed(body, secret="guess"),
            "expired": signed(body, stamp=time.time() - 301),
            "future": signed(body, stamp=time.time() + 301),
            "body-changed": signed(body + b" "),
            "missing-signature": {k: v for k, v in signed(body).items() if k != "x-signature"},
            "missing-timestamp": {k: v for k, v in signed(body).items() if k != "x-timestamp"},
            "bad-timestamp": {**signed(body), "x-timestamp": "yesterday"},
        }[tamper]
        response = await stack.client.post("/vapi/webhook", content=body, headers=headers)
        calls = await stack.core.store.query("SELECT * FROM vapi_calls")
    assert response.status_code == 401
    assert calls == []  # nothing was processed


async def test_auth_on_without_a_secret_refuses_everything(tmp_path: Path) -> None:
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}, vapi_auth="bearer") as stack:
        webhook = await stack.webhook(fixture("hang"), headers={"authorization": "Bearer "})
        llm = await stack.chat(chat_body(("user", "hi")), headers={"authorization": "Bearer "})
    assert webhook.status_code == llm.status_code == 401


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong"}, 401),
        ({"x-vapi-secret": "wrong"}, 401),
        ({"authorization": f"Bearer {SECRET}"}, 401),  # the webhook's secret is not the LLM key
        ({"authorization": f"Bearer {LLM_KEY}"}, 200),
        ({"authorization": LLM_KEY}, 200),
        ({"x-vapi-secret": LLM_KEY}, 200),
    ],
    ids=["missing", "wrong-bearer", "wrong-header", "webhook-secret", "bearer", "bare", "x-vapi-secret"],
)
async def test_custom_llm_route_key(tmp_path: Path, headers: dict[str, str], status: int) -> None:
    settings: dict[str, Any] = {"vapi_auth": "hmac", "vapi_secret": SECRET, "vapi_llm_secret": LLM_KEY}
    async with vapi_stack(tmp_path, {"p": ScriptedProvider("p")}, **settings) as stack:
        response = await stack.chat(chat_body(("user", "hi")), headers=headers)
    assert response.status_code == status


async def test_the_llm_route_refuses_before_reading_the_body() -> None:
    endpoint = CustomLlmEndpoint(responder=None, auth=LlmAuth(True, LLM_KEY))  # type: ignore[arg-type]
    sent: list[AsgiMessage] = []

    async def receive() -> AsgiMessage:
        raise AssertionError("the body was read before the credential was checked")

    async def send(message: AsgiMessage) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/vapi/chat/completions", "headers": [(b"x-vapi-secret", b"x")]}
    await endpoint(scope, receive, send)
    assert sent[0]["status"] == 401


def test_webhook_header_check_runs_without_the_body() -> None:
    auth = WebhookAuth("hmac", SECRET, skew_s=300, clock=lambda: 1_000_000.0)
    auth.check_headers({"x-signature": "ab", "x-timestamp": "1000000"})  # needs no body
    assert auth.needs_body


def test_replay_guard_forgets_signatures_after_the_window() -> None:
    guard = ReplayGuard(window_s=10)
    assert guard.first_use("sig", now=0) and not guard.first_use("sig", now=5)
    assert guard.first_use("sig", now=25)


def test_settings_choose_the_llm_key() -> None:
    settings = Settings.model_validate
    assert LlmAuth.from_settings(settings({"vapi_auth": "bearer", "vapi_secret": "a"})).key == "a"
    assert (
        LlmAuth.from_settings(settings({"vapi_auth": "bearer", "vapi_secret": "a", "vapi_llm_secret": "b"}))._secret
        == "b"
    )
    assert not LlmAuth.from_settings(settings({})).enabled
    assert LlmAuth.from_settings(settings({"vapi_llm_secret": "c"})).enabled  # a key alone turns the check on
