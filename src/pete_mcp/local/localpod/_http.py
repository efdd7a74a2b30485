"""Request plumbing shared by the endpoint's routes: problems, auth, bodies, wait params.

Routes raise `Problem(status, message)`; one exception handler renders `{"error": message}`.
RunPod's error bodies are undocumented (reference §1.9), so clients key off the status code;
the message is for people.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "Problem",
    "api_key_matches",
    "problem_response",
    "read_body",
    "read_json",
    "wait_seconds",
]


class Problem(Exception):
    """An HTTP error answer with a message a person can act on."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def problem_response(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


def api_key_matches(authorization: str | None, api_key: str) -> bool:
    """RunPod accepts `Authorization: Bearer <key>` and the raw key (reference §1.1)."""
    if not authorization:
        return False
    presented = authorization.strip()
    scheme, _, rest = presented.partition(" ")
    if scheme.lower() == "bearer" and rest:
        presented = rest.strip()
    return hmac.compare_digest(presented.encode(), api_key.encode())


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) anything over `limit` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, f"The request body is over the {limit // (1024 * 1024)} MB limit of this route.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"The request body is over the {limit // (1024 * 1024)} MB limit of this route.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    raw = await read_body(request, limit)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Problem(400, "The request body is not valid JSON.") from None


def wait_seconds(request: Request, *, default_ms: int, low_ms: int, high_ms: int) -> float:
    """The `?wait=` query parameter in seconds, validated against the route's range."""
    raw = request.query_params.get("wait")
    if raw is None:
        return default_ms / 1000
    try:
        wait_ms = int(raw)
    except ValueError:
        raise Problem(400, f"wait must be whole milliseconds, not {raw!r}.") from None
    if not low_ms <= wait_ms <= high_ms:
        raise Problem(400, f"wait must be {low_ms}-{high_ms} ms, not {wait_ms}.")
    return wait_ms / 1000
