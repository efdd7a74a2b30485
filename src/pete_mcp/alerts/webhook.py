"""A generic paging webhook: PagerDuty Events v2, Twilio's Messages API, or signed JSON.

The URL and secret are configuration (`PAGER_WEBHOOK_URL`, `PAGER_WEBHOOK_SECRET`), never
taken from a request. Shapes, as the services publish them:

- `pagerduty`: `POST https://events.pagerduty.com/v2/enqueue` with `{routing_key,
  event_action: "trigger", dedup_key, payload: {summary, source, severity, custom_details}}`;
  `202` with `{"status": "success"}` means accepted. The secret is the routing key.
- `twilio`: `POST https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json`,
  form fields `To`, `From`, `Body`, HTTP basic auth (Account SID, auth token); `201` means
  queued. One message per number in `PAGER_SMS_TO`. The secret is the auth token.
- `json`: the page as JSON, signed `X-Pete-Signature: sha256=<hex HMAC-SHA256 of the body>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from pete_mcp.core import ConfigError

from .base import AlertDeliveryError

__all__ = ["PageDetails", "SignedWebhookSink", "WebhookFormat", "pagerduty_event", "sign_body"]

WebhookFormat = Literal["pagerduty", "twilio", "json"]
_TWILIO_ACCOUNT = re.compile(r"/Accounts/(AC[0-9A-Za-z]+)/")


@dataclass(frozen=True, slots=True)
class PageDetails:
    """What a page says: the emergency, the call, and the number to call back (in full: it goes to on-call)."""

    call_id: str
    category: str
    summary: str
    callback_number: str
    at: float
    emergency_id: int | None = None  # the desk's emergency record
    escalation_id: int = 0  # filled in by the pager's claim

    @property
    def dedup_key(self) -> str:
        return self.call_id

    def headline(self) -> str:
        back = f" Call back {self.callback_number}." if self.callback_number else ""
        return f"Pete emergency ({self.category}): {self.summary}"[:900] + back


def sign_body(secret: str, body: bytes) -> str:
    """The `X-Pete-Signature` value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def pagerduty_event(routing_key: str, page: PageDetails, *, source: str = "pete") -> dict[str, Any]:
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": page.dedup_key,
        "payload": {
            "summary": page.headline()[:1024],
            "source": source,
            "severity": "critical",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(page.at)),
            "component": "jamie",
            "group": "emergency",
            "class": page.category,
            "custom_details": {
                "call_id": page.call_id,
                "category": page.category,
                "summary": page.summary,
                "callback_number": page.callback_number,
                "escalation_id": page.escalation_id,
            },
        },
        "client": "Pete",
    }


class SignedWebhookSink:
    """One paging service behind a URL from configuration."""

    name = "webhook"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        url: str,
        secret: str,
        body_format: WebhookFormat = "json",
        sms_from: str = "",
        sms_to: tuple[str, ...] = (),
        username: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        """Raises ConfigError for a URL that is not http(s), a missing secret, or Twilio without numbers."""
        if not url.startswith(("https://", "http://")):
            raise ConfigError("PAGER_WEBHOOK_URL must be an http(s) URL.")
        if not secret:
            raise ConfigError("PAGER_WEBHOOK_SECRET is needed to sign or authorise pages.")
        self._http = http
        self._url = url
        self._secret = secret
        self.format: WebhookFormat = body_format
        self.name = {"pagerduty": "pagerduty", "twilio": "twilio", "json": "webhook"}[body_format]
        self._timeout = timeout_s
        self._sms_from, self._sms_to = sms_from, sms_to
        if body_format == "twilio":
            found = _TWILIO_ACCOUNT.search(url)
            self._username = username or (found.group(1) if found else "")
            if not (self._username and sms_from and sms_to):
                raise ConfigError(
                    "Twilio paging needs PAGER_SMS_FROM, PAGER_SMS_TO and the Account SID "
                    "(in PAGER_WEBHOOK_URL's /Accounts/AC…/ path or PAGER_WEBHOOK_USERNAME)."
                )

    async def page(self, page: PageDetails) -> int:
        """Send one page; the HTTP status of the accepting answer.

        Raises:
            AlertDeliveryError: refused or unreachable (`retryable` says whether to try again).
        """
        if self.format == "pagerduty":
            return await self._post(json=pagerduty_event(self._secret, page))
        if self.format == "twilio":
            status = 0
            for number in self._sms_to:
                form = {"To": number, "From": self._sms_from, "Body": page.headline()[:1600]}
                status = await self._post(data=form, auth=(self._username, self._secret))
            return status
        body = json.dumps(
            {
                "event": "emergency",
                "escalation_id": page.escalation_id,
                "dedup_key": page.dedup_key,
                "call_id": page.call_id,
                "category": page.category,
                "summary": page.summary,
                "callback_number": page.callback_number,
                "at": page.at,
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "content-type": "application/json",
            "x-pete-signature": sign_body(self._secret, body),
            "x-pete-event-id": f"escalation-{page.escalation_id}",
        }
        return await self._post(content=body, headers=headers)

    async def _post(self, **kwargs: Any) -> int:
        try:
            response = await self._http.post(self._url, timeout=self._timeout, **kwargs)
        except httpx.HTTPError as exc:
            raise AlertDeliveryError(
                f"the {self.name} pager could not be reached ({type(exc).__name__}).", hint="Check PAGER_WEBHOOK_URL."
            ) from None
        if not 200 <= response.status_code < 300:
            raise AlertDeliveryError(
                f"the {self.name} pager refused the page ({response.status_code} {_reason(response)}).",
                hint="Check PAGER_WEBHOOK_URL and PAGER_WEBHOOK_SECRET."
                if response.status_code in (401, 403)
                else None,
                status_code=response.status_code,
            )
        return response.status_code


def _reason(response: httpx.Response) -> str:
    """A short reason from the service's error body (PagerDuty `message`, Twilio `message`), never the request."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:100]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("status") or "")[:150]
    return ""
