"""Request plumbing shared by the endpoint's routes: problems, auth, bodies, wait params.

Routes raise `Problem(status, message)`; one exception handler renders `{"error": message}`.
RunPod's error bodies are undocumented (reference §1.9), so clients key off the status code;
the message is for people.
"""

from __future__ import annotations

import hmac
import json
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "MAX_DEPTH",
    "Problem",
    "api_key_matches",
    "loads_strict",
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


MAX_DEPTH = 64


def _refuse_constant(name: str) -> Any:
    raise Problem(400, f"The request body is not valid JSON: {name} is not a JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Problem(400, f"The request body is not valid JSON: {text[:40]} is too large for a finite number.")
    return value


def _check_tree(value: Any) -> None:
    """Refuse nesting past MAX_DEPTH and lone surrogates, which RunPod's own parser would not accept."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise Problem(400, "The request body is not valid JSON: a lone UTF-16 surrogate.") from None
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise Problem(400, f"The request body is nested deeper than {MAX_DEPTH} levels.")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def loads_strict(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, finite numbers, bounded depth (the emulator's own copy of
    `pete_mcp.core.jsonwire`, since the emulator imports nothing of Pete's but the contract).

    Raises:
        Problem: 400 naming what is wrong.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, f"The request body is not UTF-8 (invalid byte at offset {exc.start}).") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise Problem(400, f"The request body is not valid JSON: {exc.msg} (column {exc.colno}).") from None
    except RecursionError:
        raise Problem(400, f"The request body is nested deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise Problem(400, f"The request body is not valid JSON: {exc}.") from None
    _check_tree(value)
    return value


async def read_json(request: Request, limit: int) -> Any:
    return loads_strict(await read_body(request, limit))


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
