"""What every HTTP face gets before its own code runs: a body limit per route and a Host check.

`BodyLimitMiddleware` counts the bytes as they arrive (a `Content-Length` over the limit is
refused before a byte is read; a chunked or lying body is cut off when it crosses the limit),
so no route ever holds more than its limit. A route's own code sees the overflow as
`BodyTooLarge` (an `InputError` with status 413) raised from `receive`, which the app's error
handler renders like any other; if a route lets it escape, the middleware answers the 413
itself. Routes whose code is not ours (the MCP SDK at `/mcp` catches every exception as a 500)
are read whole first (`buffered=True`) and replayed.

`HostGuardMiddleware` answers 421 to a request whose `Host` is neither loopback nor a name
Pete was told it serves (`ALLOWED_HOSTS`, the host of `PUBLIC_URL`): DNS-rebinding
protection for the VAPI and dashboard routes, as the MCP SDK does for `/mcp`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pete_mcp.core import BodyTooLarge, Settings

__all__ = ["BodyLimit", "BodyLimitMiddleware", "HostGuardMiddleware", "accepted_hosts", "body_limits"]


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """`limit` bytes for paths starting with `prefix`; `buffered` reads the body whole before the route runs."""

    prefix: str
    limit: int
    buffered: bool = False


def body_limits(settings: Settings) -> list[BodyLimit]:
    """The limits `pete serve` applies: VAPI's (whole transcripts) and the default for the rest."""
    return [
        BodyLimit("/vapi/", settings.vapi_body_limit_bytes),
        BodyLimit("/mcp", settings.body_limit_bytes, buffered=True),
        BodyLimit("/", settings.body_limit_bytes),
    ]


async def _send_json(send: Send, status: int, payload: object, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _too_large(limit: int) -> dict[str, object]:
    exc = BodyTooLarge(limit)
    return {"error": {"code": exc.code, "message": str(exc), "limit_bytes": limit}}


class BodyLimitMiddleware:
    """Refuse request bodies over their route's limit with 413 and a JSON error naming the limit."""

    def __init__(self, app: ASGIApp, limits: Sequence[BodyLimit]) -> None:
        self.app = app
        self.limits = sorted(limits, key=lambda rule: len(rule.prefix), reverse=True)

    def rule(self, path: str) -> BodyLimit | None:
        return next((rule for rule in self.limits if path.startswith(rule.prefix)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = self.rule(scope.get("path", "")) if scope["type"] == "http" else None
        if rule is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > rule.limit:
            await _send_json(send, 413, _too_large(rule.limit), [(b"connection", b"close")])
            return
        if rule.buffered:
            await self._buffered(scope, receive, send, rule.limit)
        else:
            await self._counted(scope, receive, send, rule.limit)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await _send_json(send, 413, _too_large(limit), [(b"connection", b"close")])

    async def _buffered(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left before sending the body
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await _send_json(send, 413, _too_large(limit), [(b"connection", b"close")])
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replaying_receive() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replaying_receive, send)


def accepted_hosts(settings: Settings) -> frozenset[str]:
    """Host names (no port, lower case) the app answers: loopback, `ALLOWED_HOSTS`, the host of `PUBLIC_URL`."""
    names = {"127.0.0.1", "localhost", "::1", "[::1]"} | set(settings.named_hosts)
    return frozenset(names)


def _host_name(raw: str) -> str:
    raw = raw.strip().lower()
    if raw.startswith("["):  # [::1]:8765
        return raw.partition("]")[0] + "]"
    return raw.rpartition(":")[0] if raw.count(":") == 1 else raw


class HostGuardMiddleware:
    """421 for a `Host` Pete does not serve, on every path except those in `exempt` (prefixes)."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str], *, exempt: Sequence[str] = ()) -> None:
        self.app = app
        self.hosts = frozenset(h.lower() for h in hosts)
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not scope.get("path", "").startswith(self.exempt):
            raw = dict(scope.get("headers", ())).get(b"host", b"").decode("latin-1")
            if _host_name(raw) not in self.hosts:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                message = "this Host is not served here: add it to ALLOWED_HOSTS (or PUBLIC_URL) if it is yours."
                await _send_json(send, 421, {"error": {"code": "misdirected_request", "message": message}})
                return
        await self.app(scope, receive, send)
