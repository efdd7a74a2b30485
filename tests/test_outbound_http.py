"""The gateway's outbound client (httpx over aiohttp) against real loopback servers that misbehave.

What matters is that every failure surfaces as the httpx error httpx's own transport raises for
it: the RunPod client decides from that class whether a request may be sent again, and a job
submitted twice runs (and bills) twice.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import httpx
import pytest

from pete_mcp.core import PeteError
from pete_mcp.gateway import outbound_http
from pete_mcp.runpod import RunPodClient

pytestmark = pytest.mark.anyio

Handler = Callable[[anyio.abc.SocketStream], Awaitable[None]]
OK_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


class Server:
    """A loopback TCP server that runs its handler per connection and counts requests and connections."""

    def __init__(self, make_handler: Callable[[Server], Handler]) -> None:
        self.handler = make_handler(self)
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed_by_client = anyio.Event()
        self.url = ""

    async def read_request(self, stream: anyio.abc.SocketStream) -> bytes:
        """One request's head and body (by content-length); b"" when the client closed instead."""
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                data += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return b""
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
            0,
        )
        while len(body) < length:
            body += await stream.receive()
        self.requests.append(head)
        return head

    async def _serve(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        async with stream:
            await self.handler(stream)


@asynccontextmanager
async def serving(make_handler: Callable[[Server], Handler]) -> AsyncIterator[Server]:
    server = Server(make_handler)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    server.url = f"http://127.0.0.1:{port}"
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server._serve)
        yield server
        tg.cancel_scope.cancel()


def hangs_up(server: Server) -> Handler:
    """Reads the request, then closes the connection without a word."""

    async def handler(stream: anyio.abc.SocketStream) -> None:
        await server.read_request(stream)

    return handler


def silent(server: Server) -> Handler:
    """Reads the request and never answers."""

    async def handler(stream: anyio.abc.SocketStream) -> None:
        await server.read_request(stream)
        await anyio.sleep_forever()

    return handler


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def half_a_stream(server: Server) -> Handler:
    """Starts a chunked SSE reply, sends one event, then closes mid-body."""

    async def handler(stream: anyio.abc.SocketStream) -> None:
        await server.read_request(stream)
        await stream.send(OK_HEAD + chunk(b"data: one\n\n"))

    return handler


def endless_stream(server: Server) -> Handler:
    """An SSE reply with an event every 10 ms until the client goes away (which it records)."""

    async def handler(stream: anyio.abc.SocketStream) -> None:
        await server.read_request(stream)
        await stream.send(OK_HEAD)
        try:
            for i in range(1000):
                await stream.send(chunk(b"data: %d\n\n" % i))
                await anyio.sleep(0.01)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError):
            server.closed_by_client.set()

    return handler


def keeps_alive(server: Server) -> Handler:
    """Answers every request on the connection with a short streamed body."""

    async def handler(stream: anyio.abc.SocketStream) -> None:
        while await server.read_request(stream):
            await stream.send(OK_HEAD + chunk(b"data: a\n\n") + chunk(b"data: b\n\n") + b"0\r\n\r\n")

    return handler


def free_loopback_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@asynccontextmanager
async def client(read_s: float = 5.0) -> AsyncIterator[httpx.AsyncClient]:
    http = outbound_http(httpx.Timeout(read_s, connect=2.0))
    async with http:
        yield http


async def test_streams_lines_and_reuses_the_connection() -> None:
    async with serving(keeps_alive) as server, client() as http:
        for _ in range(3):
            async with http.stream("POST", server.url + "/v1/chat/completions", json={"q": 1}) as response:
                assert response.status_code == 200
                lines = [line async for line in response.aiter_lines() if line]
            assert lines == ["data: a", "data: b"]
    assert len(server.requests) == 3
    assert server.connections == 1


async def test_nobody_listening_is_a_connect_error() -> None:
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{free_loopback_port()}/")


async def test_a_server_that_hangs_up_on_the_request_is_a_protocol_error_not_never_sent() -> None:
    async with serving(hangs_up) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(server.url + "/run", json={"input": {}})
    assert len(server.requests) == 1


async def test_a_reply_cut_mid_body_is_a_protocol_error_after_what_arrived() -> None:
    seen: list[str] = []
    async with serving(half_a_stream) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            async with http.stream("GET", server.url + "/stream") as response:
                async for line in response.aiter_lines():
                    seen.append(line)
    assert "data: one" in seen


async def test_no_answer_within_the_read_timeout_is_a_read_timeout() -> None:
    async with serving(silent) as server, client(read_s=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(server.url + "/health")


async def test_leaving_a_stream_early_closes_the_upstream_connection() -> None:
    """A cancelled race loser or a caller's hang-up must reach the model server as a disconnect."""
    async with serving(endless_stream) as server, client() as http:
        async with http.stream("GET", server.url + "/stream") as response:
            async for line in response.aiter_lines():
                if line:
                    break
        with anyio.fail_after(5):
            await server.closed_by_client.wait()


async def test_runpod_never_submits_a_job_twice_when_the_server_hangs_up() -> None:
    """`/run` is not repeatable: a hang-up after the request left must not be taken for "never sent"."""
    async with serving(hangs_up) as server, client() as http:
        runpod = RunPodClient(http, base_url=server.url + "/v2", endpoint_id="ep1", api_key="rpa_test", sleep=_no_wait)
        with pytest.raises(PeteError):
            await runpod.run({"chunks": ["hello"]})
        assert len(server.requests) == 1
        with pytest.raises(PeteError):
            await runpod.status("job-1")  # repeatable: tried again, as with httpx's own transport
        # Four tries (aiohttp may add one of its own per try for a GET: RFC 9112 allows it).
        assert len(server.requests) - 1 in (4, 8)


async def _no_wait(_: float) -> None:
    return None


async def test_a_proxy_named_in_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx drops the proxy variables for a client with its own transport; the gateway must not."""

    def proxy(server: Server) -> Handler:
        async def handler(stream: anyio.abc.SocketStream) -> None:
            if await server.read_request(stream):
                await stream.send(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")

        return handler

    async with serving(proxy) as server:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", server.url)
        async with client() as http:
            response = await http.get(f"http://127.0.0.1:{free_loopback_port()}/models")
    assert response.status_code == 204
    assert server.requests and server.requests[0].startswith(b"GET http://127.0.0.1:")
