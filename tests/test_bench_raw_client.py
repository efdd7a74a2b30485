"""The benchmark's raw load client (`bench/_raw_http.py`) against a real uvicorn server.

`vapi_overhead` reads every HTTP target's TTFT through it, so it must hand over the body as it
comes and whole, reuse its connections, and fail (not hang or pass) when a request goes wrong.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.mcp import serve_in_thread
from tests.support.polling import eventually

pytestmark = pytest.mark.anyio

_PATH = Path(__file__).resolve().parents[1] / "bench" / "_raw_http.py"
_spec = importlib.util.spec_from_file_location("_raw_http", _PATH)
assert _spec is not None and _spec.loader is not None
raw_http = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("_raw_http", raw_http)
_spec.loader.exec_module(raw_http)

FRAMES = [b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"]


def streaming_app(peers: list[int]) -> Any:
    """`/stream` echoes the request's body and its authorization header, then streams FRAMES;
    `/fail` answers 500; `/cut` breaks off after its first frame. Each request's client port goes
    into `peers`."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        peers.append(scope["client"][1])
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/fail":
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"boom"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        auth = dict(scope["headers"]).get(b"authorization", b"")
        await send({"type": "http.response.body", "body": body + b"|" + auth + b"\n", "more_body": True})
        for frame in FRAMES:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
            if scope["path"] == "/cut":
                raise RuntimeError("the server breaks off mid-reply")
            await anyio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})

    return app


async def test_the_body_arrives_whole_in_order_and_the_connection_is_kept() -> None:
    peers: list[int] = []
    with serve_in_thread(streaming_app(peers)) as server:
        client = raw_http.RawClient(server.url + "/stream")
        for question in (b'{"q": 1}', b'{"q": 2}'):
            parts: list[bytes] = []
            await client.post(question, parts.append, headers=b"authorization: Bearer k\r\n")
            assert b"".join(parts) == question + b"|Bearer k\n" + b"".join(FRAMES)
            assert len(parts) > 1  # handed over as it streamed, not once at the end
    assert len(peers) == 2 and peers[0] == peers[1]  # the second request on the first's connection


async def test_an_error_status_fails_the_request_and_the_next_one_gets_a_new_connection() -> None:
    peers: list[int] = []
    with serve_in_thread(streaming_app(peers)) as server:
        failing = raw_http.RawClient(server.url + "/fail")
        with pytest.raises(raw_http.RawHTTPError, match="HTTP 500"):
            await failing.post(b"{}", lambda _: None)
        parts: list[bytes] = []
        failing.path = "/stream"
        await failing.post(b"{}", parts.append)
        assert b"".join(parts).endswith(FRAMES[-1])
    assert len(peers) == 2 and peers[0] != peers[1]


async def test_a_reply_cut_off_midway_fails_instead_of_passing_or_hanging() -> None:
    with serve_in_thread(streaming_app([])) as server:
        client = raw_http.RawClient(server.url + "/cut", timeout_s=10)
        parts: list[bytes] = []
        with pytest.raises(raw_http.RawHTTPError):
            await client.post(b"{}", parts.append)
        assert FRAMES[0] in b"".join(parts) and FRAMES[1] not in b"".join(parts)


async def test_a_server_that_never_answers_times_out_and_the_connection_is_closed() -> None:
    hung_up: list[bool] = []

    async def silent(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()  # the request
        hung_up.append((await receive())["type"] == "http.disconnect")  # then nothing, until the client leaves

    with serve_in_thread(silent) as server:
        client = raw_http.RawClient(server.url + "/", timeout_s=0.3)
        with pytest.raises(raw_http.RawHTTPError, match="no complete response"):
            await client.post(b"{}", lambda _: None)
        await eventually(lambda: hung_up)
    assert hung_up == [True]
