"""The fault matrix: VAPI calls replayed while the local RunPod endpoint misbehaves.

Each fault — a 429, a 5xx, a connection reset, a worker killed mid-reply, a job stuck past the
turn budget, the gateway restarted between two turns of one call — is injected through the
local endpoint's fault plan (or a resetting proxy in front of it) with real `runpod` SDK workers
behind it. Every turn must end as a well-formed VAPI stream within its budget, and the stored
conversation must hold each thing the caller said exactly once, in order.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import anyio.abc
import httpx
import pytest

from pete_mcp.local.localpod import LocalPod, LocalPodConfig
from pete_mcp.routing.providers.runpod import RunPodProvider
from pete_mcp.runpod import RunPodClient
from tests.support.localpod import running_localpod
from tests.support.runpod_stack import runpod_client_for
from tests.support.vapi_stack import VapiStack, assert_vapi_stream, chat_body, eventually, vapi_stack

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ANSWER_DEADLINE_S = 4.0  # the apology's deadline for these calls (VAPI_ANSWER_DEADLINE_S)
SLACK_S = 3.0  # scheduling on a loaded 2-core machine
APOLOGY = "I'm sorry, I'm having trouble answering right now."


class ResettingProxy:
    """A loopback TCP proxy that resets the first `resets` connections, then relays bytes."""

    def __init__(self, target_port: int, resets: int) -> None:
        self.target_port = target_port
        self.resets = resets
        self.port = 0

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ResettingProxy]:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._handle)
            yield self
            tg.cancel_scope.cancel()

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        if self.resets > 0:
            self.resets -= 1
            sock = client.extra(anyio.abc.SocketAttribute.raw_socket)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close → RST
            await client.aclose()
            return
        async with client, await anyio.connect_tcp("127.0.0.1", self.target_port) as upstream:

            async def pipe(a: anyio.abc.SocketStream, b: anyio.abc.SocketStream) -> None:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
                    async for data in a:
                        await b.send(data)
                    await b.send_eof()

            async with anyio.create_task_group() as tg:
                tg.start_soon(pipe, client, upstream)
                tg.start_soon(pipe, upstream, client)


@pytest.fixture
async def pod(localpod_config: Callable[..., LocalPodConfig]) -> AsyncIterator[LocalPod]:
    config = localpod_config("stream_echo", min_workers=1, max_workers=2, restart_backoff_max_s=0.5)
    async with running_localpod(config) as pod:
        yield pod


@asynccontextmanager
async def call_stack(pod: LocalPod, data_dir: Path, *, base_url: str | None = None) -> AsyncIterator[VapiStack]:
    async with httpx.AsyncClient(timeout=30) as http:
        if base_url is None:
            client = runpod_client_for(pod, http)
        else:  # through the resetting proxy
            client = RunPodClient(http, base_url=base_url, endpoint_id=pod.endpoint_id, api_key=pod.api_key)
        provider = RunPodProvider(client, use_openai_route=True)
        async with vapi_stack(
            data_dir,
            {"runpod": provider},
            model="echo",
            vapi_answer_deadline_s=ANSWER_DEADLINE_S,
            vapi_holding_after_s=1.2,
        ) as stack:
            yield stack


async def turn(stack: VapiStack, history: list[tuple[str, str]], words: str, *, call_id: str) -> tuple[str, float]:
    """One VAPI turn: the whole conversation so far (as VAPI resends it) plus `words`.

    Appends the caller's words and Jamie's reply to `history`; returns the reply and its seconds.
    """
    history.append(("user", words))
    began = time.monotonic()
    with anyio.fail_after(ANSWER_DEADLINE_S + 10 * SLACK_S):  # nothing hangs
        response = await stack.client.post("/vapi/chat/completions", json=chat_body(*history, call_id=call_id))
    elapsed = time.monotonic() - began
    assert response.status_code == 200, response.text
    reply = assert_vapi_stream(response.text).content
    history.append(("assistant", reply))
    return reply, elapsed


async def callers_words(stack: VapiStack, call_id: str) -> list[str]:
    return [content for role, content in await stack.thread(call_id) if role == "user"]


def arm_429(pod: LocalPod) -> None:
    pod.faults.fail_route("openai", 429, count=1)


def arm_503(pod: LocalPod) -> None:
    pod.faults.fail_route("openai", 503, count=1)


def arm_stall(pod: LocalPod) -> None:
    pod.faults.stall_jobs(ANSWER_DEADLINE_S + 20, count=1)  # a job that outlives the turn's budget


@pytest.mark.parametrize("arm", [arm_429, arm_503, arm_stall], ids=["429", "503", "job-past-budget"])
async def test_a_fault_on_the_endpoint_still_ends_the_turn_well_formed_in_budget_and_loses_nothing(
    pod: LocalPod, tmp_path: Path, arm: Callable[[LocalPod], None]
) -> None:
    async with call_stack(pod, tmp_path) as stack:
        arm(pod)
        history: list[tuple[str, str]] = []
        first, first_s = await turn(stack, history, "Hi, my sink drips", call_id="c-fault")
        second, second_s = await turn(stack, history, "Can someone come Monday", call_id="c-fault")
        words = await callers_words(stack, "c-fault")
        armed = pod.faults.snapshot()
    assert armed["route_errors"] == [] and armed["job_stalls"] == []  # the fault did fire
    assert first_s < ANSWER_DEADLINE_S + SLACK_S and second_s < ANSWER_DEADLINE_S + SLACK_S
    assert first and second  # an answer or the spoken apology, never silence
    assert words == ["Hi, my sink drips", "Can someone come Monday"]


async def test_a_connection_reset_before_the_reply_is_retried_or_apologised_for(pod: LocalPod, tmp_path: Path) -> None:
    target = urlsplit(pod.url).port
    assert target is not None
    proxy = ResettingProxy(target, resets=2)
    async with proxy.running(), call_stack(pod, tmp_path, base_url=f"http://127.0.0.1:{proxy.port}/v2") as stack:
        history: list[tuple[str, str]] = []
        content, seconds = await turn(stack, history, "When is rent due", call_id="c-reset")
        again, _ = await turn(stack, history, "Thanks", call_id="c-reset")
        words = await callers_words(stack, "c-reset")
    assert proxy.resets == 0  # both resets happened
    assert content and again and seconds < ANSWER_DEADLINE_S + SLACK_S
    assert words == ["When is rent due", "Thanks"]


async def test_a_worker_killed_mid_reply_ends_the_turn_well_formed(pod: LocalPod, tmp_path: Path) -> None:
    pod.faults.slow_stream(0.4)  # slow enough to kill the worker while it streams
    async with call_stack(pod, tmp_path) as stack:
        async with anyio.create_task_group() as tg:
            results: list[tuple[str, float]] = []

            async def call() -> None:
                said = "please tell me about parking permits here"
                results.append(await turn(stack, [], said, call_id="c-kill"))

            tg.start_soon(call)
            await eventually(lambda: pod.state.board.running(), timeout_s=20)
            await anyio.sleep(0.5)  # let the first words reach the caller
            killed = pod.kill_worker(job_id=pod.state.board.running()[0].id)  # raises if none ran it
        words = await callers_words(stack, "c-kill")
    content, seconds = results[0]
    assert killed
    assert content and seconds < ANSWER_DEADLINE_S + SLACK_S
    assert words == ["please tell me about parking permits here"]


async def test_the_gateway_restarted_between_two_turns_keeps_the_whole_call(pod: LocalPod, tmp_path: Path) -> None:
    history: list[tuple[str, str]] = []
    async with call_stack(pod, tmp_path) as stack:
        await turn(stack, history, "Hi this is unit 4B", call_id="c-restart")
    async with call_stack(pod, tmp_path) as restarted:  # same data directory: a new process would read it
        await turn(restarted, history, "The heater rattles", call_id="c-restart")
        thread = await restarted.thread("c-restart")
    said = [content for role, content in thread if role == "user"]
    replies = [content for role, content in thread if role == "assistant"]
    assert said == ["Hi this is unit 4B", "The heater rattles"] and len(replies) == 2
