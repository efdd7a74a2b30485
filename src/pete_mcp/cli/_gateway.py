"""Finding the running gateway and talking to it: what every CLI command that reaches a model shares.

The gateway is `PETE_URL`, by default the local one (`http://127.0.0.1:PORT`). It "answers" when
`GET /api/models` returns 200 within a second. Requests authenticate with `MCP_TOKEN` when set,
else with the token the gateway wrote into the data directory for the local CLI
(`faces/cli_token.py`). Each command says on stderr which path it took (`say_path`), so an
operator knows whether the dashboard saw the work.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from pete_mcp.core import Settings, iter_sse_data
from pete_mcp.faces.cli_token import read_cli_token

__all__ = ["PROBE_TIMEOUT_S", "Gateway", "error_message", "find_gateway", "gateway_url", "say_path", "sse_parts"]

PROBE_TIMEOUT_S = 1.0


def gateway_url(settings: Settings) -> str:
    if settings.pete_url:
        return settings.pete_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


@dataclass(frozen=True)
class Gateway:
    """A gateway that answered: where it is, and the credential to send it."""

    url: str
    token: str | None
    http: httpx.AsyncClient

    def headers(self, *, stream: bool = False) -> dict[str, str]:
        headers = {"X-Pete-Client": "cli"}
        if stream:
            headers["Accept"] = "text/event-stream"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def _token(settings: Settings) -> str | None:
    return settings.mcp_token.get_secret_value() if settings.mcp_token else read_cli_token(settings.data_dir)


async def _answers(http: httpx.AsyncClient, url: str) -> bool:
    try:
        response = await http.get(f"{url}/api/models", timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


@asynccontextmanager
async def find_gateway(settings: Settings) -> AsyncIterator[Gateway | None]:
    """The running gateway (its client open for the block), or None when none answers."""
    url = gateway_url(settings)
    async with httpx.AsyncClient() as http:
        yield Gateway(url, _token(settings), http) if await _answers(http, url) else None


def say_path(settings: Settings, gateway: Gateway | None, *, through: str, in_process: str) -> None:
    """Print (stderr) which path a command took: `through` the gateway, or `in_process` without one."""
    if gateway is not None:
        print(f"→ through the gateway at {gateway.url} ({through})", file=sys.stderr)
    else:
        print(f"→ no gateway answered at {gateway_url(settings)}; {in_process}", file=sys.stderr)


def error_message(response: httpx.Response) -> str:
    """The gateway's `{"error": {"message"}}`, or the start of the body."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


async def sse_parts(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON `data:` frames of an `/api/prompt` stream."""
    async for data in iter_sse_data(response.aiter_bytes()):
        yield json.loads(data)
