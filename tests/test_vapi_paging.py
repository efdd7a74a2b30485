"""An emergency pages a person through the alert sinks, once per call, retried; Jamie claims only what happened.

The VAPI face runs over a real core and SQLite store (`vapi_stack`); Slack, PagerDuty, Twilio,
a signed JSON receiver and VAPI's control URL are stand-ins behind one `httpx.MockTransport`,
answering in their published shapes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import httpx
import pytest

from pete_mcp.alerts import PageDetails, pager_from_settings
from pete_mcp.core import EventBus, Settings, Store
from pete_mcp.core.escalations import EscalationBook
from pete_vapi.escalation import LOGGED_LINE, PAGED_LINE
from tests.support.scripted import ScriptedProvider
from tests.support.vapi_stack import assert_vapi_stream, chat_body, eventually, fixture, vapi_stack

pytestmark = pytest.mark.anyio

SLACK = "https://hooks.slack.com/services/T0/B0/secret-path"
PAGERDUTY = "https://events.pagerduty.com/v2/enqueue"
TWILIO = "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef/Messages.json"
RECEIVER = "https://pager.example.com/pete"
CALLER = "+15551234567"


@dataclass
class Services:
    """What each stand-in answers (a list of statuses, the last repeating) and what it was sent."""

    answers: dict[str, list[int]] = field(default_factory=dict)
    sent: dict[str, list[httpx.Request]] = field(default_factory=dict)
    gate: anyio.Event | None = None  # when set, the pager services wait for it

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        name = {
            "hooks.slack.com": "slack",
            "events.pagerduty.com": "pagerduty",
            "api.twilio.com": "twilio",
            "pager.example.com": "webhook",
        }.get(host, "vapi")
        self.sent.setdefault(name, []).append(request)
        if name == "vapi":
            return httpx.Response(200, json={})
        if self.gate is not None:
            await self.gate.wait()
        statuses = self.answers.get(name, [200])
        status = statuses[min(len(self.sent[name]) - 1, len(statuses) - 1)]
        if name == "slack":
            return httpx.Response(status, text="ok" if status == 200 else "internal_error")
        if name == "pagerduty":
            if status == 202:
                return httpx.Response(202, json={"status": "success", "message": "Event processed", "dedup_key": "x"})
            return httpx.Response(status, json={"status": "invalid event", "message": "Event object is invalid"})
        if name == "twilio":
            if status == 201:
                return httpx.Response(201, json={"sid": "SM123", "status": "queued"})
            return httpx.Response(status, json={"code": 20003, "message": "Authenticate", "status": status})
        return httpx.Response(status, json={})

    def says(self) -> list[str]:
        return [json.loads(r.content)["content"] for r in self.sent.get("vapi", []) if b'"say"' in r.content]


def hazard_body(words: str = "I smell gas in my kitchen", call_id: str = "c-91") -> dict[str, Any]:
    body = fixture("custom_llm_request")
    body["messages"][-1]["content"] = words
    body["call"]["id"] = call_id
    return body


def stack_for(tmp_path: Path, services: Services, **settings: Any) -> Any:
    http = httpx.AsyncClient(transport=httpx.MockTransport(services))
    settings.setdefault("pager_backoff_s", 0.01)
    return vapi_stack(tmp_path, {"cold": ScriptedProvider("cold", first_token_delay_s=60)}, http=http, **settings)


async def escalations(stack: Any) -> list[dict[str, Any]]:
    return await stack.core.store.query("SELECT call_id, category, state FROM escalations")


async def attempts(stack: Any) -> list[tuple[str, int, int | None]]:
    rows = await stack.core.store.query("SELECT sink, ok, status FROM page_attempts ORDER BY id")
    return [(r["sink"], r["ok"], r["status"]) for r in rows]


async def test_when_slack_accepts_the_page_jamie_says_the_on_call_team_was_paged(tmp_path: Path) -> None:
    services = Services()
    async with stack_for(tmp_path, services, slack_webhook_url=SLACK) as stack:
        response = await stack.chat(hazard_body())
        await stack.face.background.wait_idle()
        thread = await stack.core.store.thread("c-91")
        rows = await escalations(stack)
        tried = await attempts(stack)
    said = assert_vapi_stream(response.text)
    assert said.finish_reason == "tool_calls" and said.content == ""  # the transfer went out at once
    assert services.says()[-1] == PAGED_LINE
    assert rows == [{"call_id": "c-91", "category": "gas", "state": "paged"}]
    assert tried == [("mcp", 1, None), ("slack", 1, 200)]
    slack = json.loads(services.sent["slack"][0].content)
    assert "Emergency" in slack["text"] and slack["blocks"][0]["type"] == "header"
    assert CALLER not in json.dumps(slack) and "4567" in json.dumps(slack)  # the number is masked in a channel
    assert "paged the on-call team" in thread[-1]["content"]
    assert "was paged (slack)" in thread[-2]["content"]  # the tool result the model would read


async def test_when_every_sink_fails_jamie_never_claims_a_page(tmp_path: Path) -> None:
    services = Services(answers={"slack": [500], "pagerduty": [400]})
    async with stack_for(
        tmp_path,
        services,
        slack_webhook_url=SLACK,
        pager_webhook_url=PAGERDUTY,
        pager_webhook_format="pagerduty",
        pager_webhook_secret="R0UTINGKEY",
        pager_retries=2,
    ) as stack:
        await stack.chat(hazard_body())
        await stack.face.background.wait_idle()
        thread = await stack.core.store.thread("c-91")
        rows = await escalations(stack)
        tried = await attempts(stack)
    assert services.says()[-1] == LOGGED_LINE
    assert all("paged" not in s or "not" in s for s in services.says())
    assert "do not say anyone was paged" in thread[-2]["content"] and "paged" not in thread[-1]["content"]
    assert rows[0]["state"] == "failed"
    assert [t for t in tried if t[0] == "slack"] == [("slack", 0, 500)] * 3  # 5xx: retried twice
    assert [t for t in tried if t[0] == "pagerduty"] == [("pagerduty", 0, 400)]  # 4xx: not retried


async def test_with_no_pager_configured_the_tool_result_says_nobody_was_paged(tmp_path: Path) -> None:
    body = fixture("tool_calls_string_args")
    body["message"]["toolCallList"] = [
        {
            "id": "t-esc",
            "type": "function",
            "function": {"name": "escalate_emergency", "arguments": '{"category": "flood", "summary": "pipe burst"}'},
        }
    ]
    async with stack_for(tmp_path, Services()) as stack:
        response = await stack.webhook(body)
    result = response.json()["results"][0]["result"]
    assert "no pager is configured" in result and "do not say anyone was paged" in result


async def test_a_page_retries_a_503_then_pagerduty_accepts(tmp_path: Path) -> None:
    services = Services(answers={"pagerduty": [503, 202]})
    async with stack_for(
        tmp_path,
        services,
        pager_webhook_url=PAGERDUTY,
        pager_webhook_format="pagerduty",
        pager_webhook_secret="R0UTINGKEY",
    ) as stack:
        await stack.chat(hazard_body(call_id="c-pd"))
        await stack.face.background.wait_idle()
        tried = await attempts(stack)
    assert [t for t in tried if t[0] == "pagerduty"] == [("pagerduty", 0, 503), ("pagerduty", 1, 202)]
    assert services.says()[-1] == PAGED_LINE
    event = json.loads(services.sent["pagerduty"][-1].content)
    assert event["routing_key"] == "R0UTINGKEY" and event["event_action"] == "trigger"
    assert event["dedup_key"] == "c-pd"
    payload = event["payload"]
    assert payload["severity"] == "critical" and payload["source"] and "gas" in payload["summary"]
    assert payload["custom_details"]["callback_number"] == CALLER  # on-call needs the whole number


async def test_an_emergency_on_two_turns_of_one_call_pages_once(tmp_path: Path) -> None:
    services = Services(answers={"webhook": [200]})
    async with stack_for(tmp_path, services, pager_webhook_url=RECEIVER, pager_webhook_secret="s3cret") as stack:
        await stack.chat(hazard_body("I smell gas in my kitchen"))
        await stack.face.background.wait_idle()
        await stack.chat(hazard_body("I still smell gas, it's getting worse"))
        await stack.face.background.wait_idle()
        rows = await escalations(stack)
    assert len(services.sent["webhook"]) == 1
    assert rows == [{"call_id": "c-91", "category": "gas", "state": "paged"}]
    assert services.says().count(PAGED_LINE) == 2  # the second turn reports the page the first one sent


async def test_the_signed_json_page_verifies_with_the_shared_secret(tmp_path: Path) -> None:
    services = Services()
    async with stack_for(tmp_path, services, pager_webhook_url=RECEIVER, pager_webhook_secret="s3cret") as stack:
        await stack.chat(hazard_body())
        await stack.face.background.wait_idle()
    request = services.sent["webhook"][0]
    expected = "sha256=" + hmac.new(b"s3cret", request.content, hashlib.sha256).hexdigest()
    assert request.headers["x-pete-signature"] == expected
    page = json.loads(request.content)
    assert (page["event"], page["call_id"], page["category"], page["callback_number"]) == (
        "emergency",
        "c-91",
        "gas",
        CALLER,
    )


async def test_a_twilio_page_is_one_form_post_per_number_with_basic_auth(tmp_path: Path) -> None:
    services = Services(answers={"twilio": [201]})
    async with stack_for(
        tmp_path,
        services,
        pager_webhook_url=TWILIO,
        pager_webhook_format="twilio",
        pager_webhook_secret="auth-token",
        pager_sms_from="+15550001111",
        pager_sms_to="+15550002222, +15550003333",
    ) as stack:
        await stack.chat(hazard_body())
        await stack.face.background.wait_idle()
    sent = services.sent["twilio"]
    forms = [parse_qs(r.content.decode()) for r in sent]
    assert [f["To"] for f in forms] == [["+15550002222"], ["+15550003333"]]
    assert all(f["From"] == ["+15550001111"] and "gas" in f["Body"][0] for f in forms)
    assert sent[0].headers["authorization"] == "Basic " + base64.b64encode(b"AC0123456789abcdef:auth-token").decode()
    assert sent[0].headers["content-type"] == "application/x-www-form-urlencoded"
    assert services.says()[-1] == PAGED_LINE


async def test_a_slow_pager_never_holds_the_transfer_and_jamie_does_not_guess(tmp_path: Path) -> None:
    services = Services(gate=anyio.Event())
    async with stack_for(tmp_path, services, slack_webhook_url=SLACK, pager_wait_s=0.2) as stack:
        with anyio.fail_after(3):
            response = await stack.chat(hazard_body())
        assert assert_vapi_stream(response.text).finish_reason == "tool_calls"
        await eventually(lambda: LOGGED_LINE in services.says())
        assert services.gate is not None
        services.gate.set()  # Slack answers late: the page still goes out, and is recorded
        await stack.face.background.wait_idle()
        rows = await escalations(stack)
    assert PAGED_LINE not in services.says()
    assert rows[0]["state"] == "paged"


async def test_the_models_escalate_tool_pages_then_transfers(tmp_path: Path) -> None:
    from tests.test_vapi_tools import ReplyScript

    call = (
        '<tool_call>{"name": "escalate_emergency", '
        '"arguments": {"category": "electrical", "summary": "panel hot"}}</tool_call>'
    )
    services = Services()
    http = httpx.AsyncClient(transport=httpx.MockTransport(services))
    body = chat_body(("user", "The breaker panel feels warm."), tools=fixture("custom_llm_request")["tools"])
    body["call"]["monitor"] = {"controlUrl": "https://vapi.example/c/control"}
    async with vapi_stack(tmp_path, {"script": ReplyScript([call])}, http=http, slack_webhook_url=SLACK) as stack:
        response = await stack.chat(body)
        await stack.face.background.wait_idle()
        rows = await escalations(stack)
    said = assert_vapi_stream(response.text)
    assert [c["function"]["name"] for c in said.tool_calls] == ["transfer_call_tool"]
    assert rows == [{"call_id": "call-1", "category": "electrical", "state": "paged"}]
    assert services.says() == [PAGED_LINE]


async def test_two_replicas_detecting_one_emergency_send_one_page(tmp_path: Path) -> None:
    services = Services(answers={"webhook": [200]})
    settings = Settings.model_validate(
        {"data_dir": tmp_path, "pager_webhook_url": RECEIVER, "pager_webhook_secret": "s3cret"}
    )
    stores = [Store(tmp_path / "pete.sqlite3"), Store(tmp_path / "pete.sqlite3")]
    results: list[Any] = []
    async with httpx.AsyncClient(transport=httpx.MockTransport(services)) as http:
        for store in stores:
            store.open()
        pagers = [pager_from_settings(settings, http, EventBus(), EscalationBook(s)) for s in stores]
        page = PageDetails(call_id="c-2r", category="fire", summary="smoke", callback_number=CALLER, at=0.0)

        async def run(pager: Any) -> None:
            results.append(await pager.page(page))

        async with anyio.create_task_group() as tg:
            for pager in pagers:
                tg.start_soon(run, pager)
        for store in stores:
            store.close()
    assert len(services.sent["webhook"]) == 1
    assert sorted(r.duplicate for r in results) == [False, True]
    assert all(r.paged for r in results)
