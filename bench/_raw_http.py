"""The lightest load client a Python process can be: HTTP/1.1 POSTs on kept-alive sockets, the
response parsed by httptools (the C parser uvicorn serves with), nothing else.

A latency benchmark's load generator shares the machine with what it measures. On two shared
CPUs a client library's own work per request (httpx builds a request and a response object,
wraps every chunk, runs its hooks) costs about what the server's does, and every stream it is
reading waits behind it: that time is added to each HTTP target's TTFT and to none measured in
process. This client does what wrk would: write the request's bytes, hand the body's bytes to
the caller as they arrive, and keep the connection for the next request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["RawClient", "RawHTTPError"]


class RawHTTPError(Exception):
    """A request failed: an error status, a closed connection, a parser error or a timeout."""


class _Connection(asyncio.Protocol):
    """One kept-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.open = True
        self._done: asyncio.Future[None] | None = None
        self._on_body: Callable[[bytes], None] = _ignore

    # --- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is one, though not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(RawHTTPError(f"unreadable response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail(RawHTTPError(f"the server closed the connection ({exc or 'EOF'})"))

    # --- httptools callbacks -------------------------------------------------------------
    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status != 200:
            self._fail(RawHTTPError(f"HTTP {status}"))

    def on_body(self, body: bytes) -> None:
        self._on_body(body)

    def on_message_complete(self) -> None:
        if not self.parser.should_keep_alive():
            self.open = False
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    # --- one request -----------------------------------------------------------------------
    async def exchange(self, request: bytes, on_body: Callable[[bytes], None]) -> None:
        """Send `request`; `on_body` gets the decoded body as it comes; returns when it has ended."""
        assert self.transport is not None
        self._done = asyncio.get_running_loop().create_future()
        self._on_body = on_body
        self.transport.write(request)
        try:
            await self._done
        finally:
            self._done, self._on_body = None, _ignore

    def _fail(self, exc: RawHTTPError) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)


def _ignore(_: bytes) -> None:
    pass


class RawClient:
    """POST JSON bytes to one server, reusing idle connections (one per concurrent request)."""

    def __init__(self, url: str, *, timeout_s: float = 120.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self.timeout_s = timeout_s
        self._idle: list[_Connection] = []

    async def post(self, body: bytes, on_body: Callable[[bytes], None], *, headers: bytes = b"") -> None:
        """POST `body` (JSON; `headers`: extra header lines, each ending in CRLF), feeding the
        response body to `on_body` until it ends.

        Raises:
            RawHTTPError: the request failed (its connection is not reused).
        """
        request = (
            b"POST %s HTTP/1.1\r\nhost: %s:%d\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
            % (self.path.encode(), self.host.encode(), self.port, len(body), headers)
        ) + body
        conn = await self._connection()
        try:
            async with asyncio.timeout(self.timeout_s):
                await conn.exchange(request, on_body)
        except TimeoutError as exc:
            conn._fail(RawHTTPError(f"no complete response in {self.timeout_s:g} s"))
            raise RawHTTPError(f"no complete response in {self.timeout_s:g} s") from exc
        except BaseException:
            conn._fail(RawHTTPError("the request was abandoned"))
            raise
        if conn.open:
            self._idle.append(conn)

    async def _connection(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.open:
                return conn
        try:
            _, conn = await asyncio.get_running_loop().create_connection(_Connection, self.host, self.port)
        except OSError as exc:
            raise RawHTTPError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return conn
