"""The gateway's outbound HTTP client: httpx's API over aiohttp's connection pool and parser.

A provider's reply is a stream of small SSE chunks, and per chunk httpx's own transport
(httpcore, h11, anyio streams) cost the gateway more CPU than anything else on a call's path;
aiohttp reads them with its C parser. Measured side by side (docs/benchmarks.md, "VAPI route
overhead with the outbound client on aiohttp"): the gateway's CPU per streamed call fell by about
a quarter, and what Pete adds to the first token at 32 concurrent calls by about a third.
Everything above the transport stays httpx: the providers' code, timeouts, tests' `MockTransport`.
httpx ignores the proxy variables (`HTTPS_PROXY`, …) for a client given its own transport, so
where one is set the client is httpx's own, which honours them and `NO_PROXY`.

`httpx-aiohttp` translates aiohttp's errors coarsely: a server that hangs up mid-request, or a
connection reset, becomes `httpx.ConnectTimeout`, which means "never sent" and so "safe to send
again" to the RunPod client: a job submitted twice. `_exact_errors` translates them again, to what
httpx's own transport raises for the same failure.
"""

from __future__ import annotations

import urllib.request
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import cast

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["outbound_http"]


def outbound_http(timeout: httpx.Timeout, *, max_connections: int = 256) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` whose requests go through aiohttp (close it with `aclose`); httpx's
    own transport where the environment names a proxy."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    if set(urllib.request.getproxies()) - {"no"}:
        return httpx.AsyncClient(timeout=timeout, limits=limits)
    return httpx.AsyncClient(timeout=timeout, limits=limits, transport=_ExactTransport(limits=limits))


def _httpx_error(exc: BaseException | None) -> type[httpx.TransportError] | None:
    """The error httpx's own transport raises for the failure aiohttp reported as `exc`."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # waiting for a pooled connection, or connecting
        return httpx.ConnectTimeout
    if isinstance(exc, aiohttp.ServerTimeoutError):  # no byte within the read timeout
        return httpx.ReadTimeout
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, no such host, TLS: nothing was sent
        return httpx.ConnectError
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):  # hung up mid-message
        return httpx.RemoteProtocolError
    if isinstance(exc, aiohttp.ClientError):  # a reset or another failure once the request may have left
        return httpx.ReadError
    return None


@contextmanager
def _exact_errors() -> Iterator[None]:
    try:
        yield
    except httpx.TransportError as exc:
        kind = _httpx_error(exc.__cause__)
        if kind is None or type(exc) is kind:
            raise
        raise kind(str(exc)) from exc.__cause__
    except aiohttp.ClientError as exc:  # one httpx-aiohttp does not translate at all
        raise (_httpx_error(exc) or httpx.TransportError)(str(exc) or type(exc).__name__) from exc


class _ExactStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, response: httpx.Response) -> None:
        self._inner = inner
        self._response = weakref.ref(response)  # weak: a strong one would be a cycle of its own

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _exact_errors():
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        # httpx's client wraps this stream in one that points back at the response, and the
        # response points at it: a cycle, so every reply (25 objects: request, URL, headers,
        # response, streams) waited for the cycle collector, and at 32 calls at once its passes
        # were what held every call's next token. Once closed the response needs no stream:
        # cut the cycle here, and the whole reply is freed the moment its last user lets go.
        inner, self._inner = self._inner, _CLOSED
        response = self._response()
        if response is not None:
            response.stream = _CLOSED
        with _exact_errors():
            await inner.aclose()


_CLOSED = httpx.ByteStream(b"")


class _ExactTransport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _exact_errors():
            response = await super().handle_async_request(request)
        response.stream = _ExactStream(cast(httpx.AsyncByteStream, response.stream), response)
        return response
