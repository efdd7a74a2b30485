"""Slack sink: posts alert notices to an incoming webhook as Block Kit messages.

Slack's incoming webhook takes `POST {url}` with a JSON body holding `text` (the
notification fallback) and `blocks`, and answers `200 ok`; errors come back as a status with
a short plain-text reason (`invalid_payload`, `no_service`, …). The webhook URL is the secret,
so it never appears in an error or a log line.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from .base import AlertDeliveryError, Notice

__all__ = ["SlackWebhookSink", "slack_message"]

_ICON = {"fired": ":rotating_light:", "repeat": ":warning:", "resolved": ":white_check_mark:"}
_VERB = {"fired": "Alert", "repeat": "Still firing", "resolved": "Resolved"}


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def slack_message(notice: Notice) -> dict[str, Any]:
    """The webhook body for one notice: a plain `text` fallback plus header, detail and context blocks."""
    f = notice.alert.finding
    headline = f"{_VERB[notice.kind]}: {f.title}"
    if notice.kind == "resolved":
        lasted = max(0.0, notice.at - notice.alert.since)
        body = f"Recovered after {lasted:.0f} s. Was: {f.detail}"
    else:
        body = f.detail
    return {
        "text": f"{_ICON[notice.kind]} Pete {headline}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"Pete {headline}"[:150], "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900] or "-"}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"rule `{f.rule}` · severity *{f.severity}* · since {_when(notice.alert.since)}",
                    }
                ],
            },
        ],
    }


class SlackWebhookSink:
    name = "slack"

    def __init__(self, http: httpx.AsyncClient, webhook_url: str, *, timeout_s: float = 10.0) -> None:
        self._http = http
        self._url = webhook_url
        self._timeout = timeout_s

    async def send(self, notice: Notice) -> None:
        try:
            response = await self._http.post(self._url, json=slack_message(notice), timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise AlertDeliveryError(
                f"the Slack webhook could not be reached ({type(exc).__name__}).", hint="Check SLACK_WEBHOOK_URL."
            ) from None
        if response.status_code != 200:
            reason = response.text.strip()[:100]
            raise AlertDeliveryError(
                f"Slack refused the alert ({response.status_code} {reason}).",
                hint="Check SLACK_WEBHOOK_URL.",
                status_code=response.status_code,
            )
