"""RunPodClient against RunPod's published shapes (shared/reference/runpod.md §1), in process.

The RunPod cloud is an external service, so these tests route `httpx.MockTransport` on the
URL path. The same client runs against the local endpoint with real workers in
`test_runpod_client_localpod.py`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from pydantic import SecretStr

from pete_mcp.contract import ChatJob, ChatResult, Message
from pete_mcp.core.errors import (
    AuthError,
    ConfigError,
    InputError,
    JobFailed,
    NotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from pete_mcp.core.provider import JobStarted, TextDelta
from pete_mcp.core.settings import Settings
from pete_mcp.runpod.client import (
    JobPolicy,
    JobStatus,
    RunPodClient,
    decode_worker_error,
    runpod_client_from_settings,
)

pytestmark = pytest.mark.anyio

KEY = "rp_TEST_SECRET_KEY_0123456789"
BASE = "https://api.runpod.ai/v2"
EP = "ep123"

Handler = Callable[[httpx.Request], "httpx.Response | Awaitable[httpx.Response]"]


@dataclass
class Recorder:
    """What the client sent, and the delays it asked to sleep."""

    requests: list[httpx.Request] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [r.url.path.removeprefix(f"/v2/{EP}/") for r in self.requests]

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await anyio.lowlevel.checkpoint()


def make_client(handler: Handler, *, real_sleep: bool = False, **kwargs: Any) -> tuple[RunPodClient, Recorder]:
    rec = Recorder()

    async def record(request: httpx.Request) -> httpx.Response:
        rec.requests.append(request)
        result = handler(request)
        return await result if isinstance(result, Awaitable) else result

    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    options: dict[str, Any] = {"retries": 3, "backoff_base_s": 0.1, "queue_check_s": 60.0}
    options.update(kwargs)
    if not real_sleep:
        options["sleep"] = rec.sleep
    client = RunPodClient(http, base_url=BASE, endpoint_id=EP, api_key=KEY, **options)
    return client, rec


def op(request: httpx.Request) -> str:
    """`run`, `status`, `stream`, ... (the first path segment after the endpoint)."""
    return request.url.path.removeprefix(f"/v2/{EP}/").split("/", 1)[0]


def job(status: str, job_id: str = "job-1-u1", **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "status": status, **extra}


def sequence(*responses: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """A handler answering each call with the next response (or raising the next exception)."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler


def chat_job() -> ChatJob:
    return ChatJob(model="jamie", messages=[Message(role="user", content="Is there a fee?")], request_id="r1")


# --- requests on the wire ---------------------------------------------------------------------


async def test_run_sends_input_webhook_and_policy_with_a_bearer_key() -> None:
    client, rec = make_client(lambda r: httpx.Response(200, json=job("IN_QUEUE")))
    ref = await client.run(
        chat_job(), webhook="https://hook.example/done", policy=JobPolicy(execution_timeout_ms=60_000, ttl_ms=90_000)
    )
    assert (ref.id, ref.status) == ("job-1-u1", JobStatus.IN_QUEUE)
    sent = rec.requests[0]
    assert (sent.method, str(sent.url)) == ("POST", f"{BASE}/{EP}/run")
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    body = json.loads(sent.content)
    assert body["webhook"] == "https://hook.example/done"
    assert body["policy"] == {"executionTimeout": 60_000, "ttl": 90_000}
    assert body["input"]["model"] == "jamie" and body["input"]["messages"][0]["content"] == "Is there a fee?"
    assert "temperature" not in body["input"]["options"]  # unset options are not sent as null


async def test_every_call_has_connect_read_write_and_pool_timeouts() -> None:
    client, rec = make_client(lambda r: httpx.Response(200, json=job("COMPLETED")))
    await client.status("j")
    await client.runsync({"x": 1}, wait_s=20)
    timeouts = [r.extensions["timeout"] for r in rec.requests]
    assert timeouts[0] == {"connect": 5.0, "read": 30.0, "write": 10.0, "pool": 5.0}
    assert timeouts[1] == {"connect": 5.0, "read": 30.0, "write": 10.0, "pool": 5.0}  # wait 20 s + 10


async def test_runsync_clamps_wait_to_what_runpod_accepts() -> None:
    client, rec = make_client(lambda r: httpx.Response(200, json=job("COMPLETED", output={"ok": True})))
    await client.runsync({}, wait_s=0.2)
    await client.runsync({}, wait_s=900)
    assert [r.url.params["wait"] for r in rec.requests] == ["1000", "300000"]
    assert rec.requests[1].extensions["timeout"]["read"] == 310.0


# --- retries ----------------------------------------------------------------------------------


async def test_status_is_retried_on_5xx_with_full_jitter_backoff() -> None:
    client, rec = make_client(
        sequence(httpx.Response(503), httpx.Response(500), httpx.Response(200, json=job("IN_PROGRESS")))
    )
    assert (await client.status("job-1-u1")).status is JobStatus.IN_PROGRESS
    assert len(rec.requests) == 3
    assert 0 <= rec.sleeps[0] <= 0.1 and 0 <= rec.sleeps[1] <= 0.2
    assert len(set(rec.sleeps)) == 2  # jittered, not a fixed ladder


async def test_429_waits_as_long_as_retry_after_says() -> None:
    client, rec = make_client(
        sequence(httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json={"jobs": {}}))
    )
    await client.health()
    assert rec.sleeps == [2.0]


async def test_retry_after_beyond_the_call_timeout_fails_at_once() -> None:
    client, rec = make_client(sequence(httpx.Response(429, headers={"Retry-After": "3600"})), timeout_s=30)
    with pytest.raises(ProviderUnavailable, match="429"):
        await client.health()
    assert rec.sleeps == [] and len(rec.requests) == 1


async def test_429_on_run_is_retried_because_no_job_was_created() -> None:
    client, rec = make_client(sequence(httpx.Response(429), httpx.Response(200, json=job("IN_QUEUE"))))
    assert (await client.run({"x": 1})).id == "job-1-u1"
    assert rec.paths() == ["run", "run"]


async def test_run_is_never_repeated_after_a_5xx_or_a_broken_connection() -> None:
    for failure in (httpx.Response(502), httpx.ReadError("connection reset")):
        client, rec = make_client(sequence(failure, httpx.Response(200, json=job("IN_QUEUE"))))
        with pytest.raises(ProviderUnavailable):
            await client.run({"x": 1})
        assert rec.paths() == ["run"]


async def test_runsync_and_openai_chat_are_not_repeated_after_a_5xx() -> None:
    client, rec = make_client(lambda r: httpx.Response(500))
    with pytest.raises(ProviderUnavailable, match="500"):
        await client.runsync({"x": 1}, wait_s=5)
    with pytest.raises(ProviderUnavailable, match="500"):
        async for _ in client.openai_chat_stream({"model": "m", "messages": []}):
            pass
    assert rec.paths() == ["runsync", "openai/v1/chat/completions"]


async def test_run_is_repeated_when_the_connection_was_refused_before_sending() -> None:
    client, rec = make_client(
        sequence(
            httpx.ConnectError("refused"), httpx.ConnectError("refused"), httpx.Response(200, json=job("IN_QUEUE"))
        )
    )
    assert (await client.run({"x": 1})).status is JobStatus.IN_QUEUE
    assert rec.paths() == ["run", "run", "run"]


async def test_safe_calls_retry_read_errors_and_timeouts() -> None:
    client, rec = make_client(
        sequence(
            httpx.ReadTimeout("slow"),
            httpx.RemoteProtocolError("bad"),
            httpx.Response(200, json={"id": "j", "status": "CANCELLED"}),
        )
    )
    assert (await client.cancel("j")).status is JobStatus.CANCELLED
    assert rec.paths() == ["cancel/j"] * 3


async def test_giving_up_after_the_last_retry_says_how_often_it_tried() -> None:
    client, rec = make_client(sequence(httpx.ConnectError("refused")), retries=2)
    with pytest.raises(ProviderUnavailable, match="after 3 tries") as info:
        await client.health()
    assert len(rec.requests) == 3 and len(rec.sleeps) == 2
    assert "RUNPOD_BASE_URL" in str(info.value)


async def test_a_read_timeout_on_run_is_a_provider_timeout_not_a_retry() -> None:
    client, rec = make_client(sequence(httpx.ReadTimeout("slow")))
    with pytest.raises(ProviderTimeout):
        await client.run({"x": 1})
    assert len(rec.requests) == 1


# --- errors -----------------------------------------------------------------------------------


async def test_bad_key_is_an_auth_error_naming_the_setting_not_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client, _ = make_client(lambda r: httpx.Response(401, text=f"bad key {KEY}"))
    with pytest.raises(AuthError) as info:
        await client.health()
    assert str(info.value) == "RunPod refused the API key (401): check RUNPOD_API_KEY."
    assert KEY not in caplog.text


async def test_404_on_an_endpoint_call_names_the_endpoint_setting() -> None:
    client, _ = make_client(lambda r: httpx.Response(404))
    with pytest.raises(NotFound, match=f"endpoint {EP} not found: check RUNPOD_ENDPOINT_ID"):
        await client.run({"x": 1})


async def test_404_on_a_job_call_says_the_job_expired_or_is_unknown() -> None:
    client, rec = make_client(lambda r: httpx.Response(404, json={"error": "request does not exist"}))
    with pytest.raises(NotFound, match=r"job gone-1 not found.*expired"):
        await client.status("gone-1")
    assert len(rec.requests) == 1  # a 404 is an answer, not a failure to retry


async def test_other_4xx_is_an_input_error_with_the_body_but_never_the_key() -> None:
    client, _ = make_client(lambda r: httpx.Response(400, text=f"invalid input; your key {KEY} is fine"))
    with pytest.raises(InputError, match="400") as info:
        await client.run({"x": 1})
    assert KEY not in str(info.value) and "***" in str(info.value)


async def test_an_unexpected_body_is_a_provider_error() -> None:
    client, _ = make_client(lambda r: httpx.Response(200, text="<html>gateway</html>"))
    with pytest.raises(ProviderError, match="unexpected body"):
        await client.status("j")


async def test_constructor_rejects_missing_key_and_bad_endpoint_id() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigError, match="RUNPOD_API_KEY"):
            RunPodClient(http, base_url=BASE, endpoint_id=EP, api_key="")
        with pytest.raises(ConfigError, match="RUNPOD_ENDPOINT_ID"):
            RunPodClient(http, base_url=BASE, endpoint_id="a/b", api_key=KEY)
        assert KEY not in repr(RunPodClient(http, base_url=BASE, endpoint_id=EP, api_key=KEY))


# --- worker errors ----------------------------------------------------------------------------

SDK_RAISED = json.dumps(
    {
        "error_type": "<class 'ValueError'>",
        "error_message": "model 'x' is not loaded",
        "error_traceback": "Traceback ...",
        "hostname": "h",
        "worker_id": "w-7",
        "runpod_version": "1.12.0",
    }
)


@pytest.mark.parametrize(
    ("raw", "described"),
    [
        (SDK_RAISED, "ValueError: model 'x' is not loaded"),
        ({"type": "error", "code": "model_not_found", "message": "no model jamie"}, "model_not_found: no model jamie"),
        (
            str({"type": "error", "code": "timeout", "message": "model server took too long"}),
            "timeout: model server took too long",
        ),
        (json.dumps({"code": "bad_input", "message": "messages is empty"}), "bad_input: messages is empty"),
        ("handler: boom \ntraceback: Traceback (most recent call last): ...", "boom"),
        ({"error": {"message": "CUDA out of memory", "type": "worker_error"}}, "worker_error: CUDA out of memory"),
        ("plain words", "plain words"),
        (None, "the worker reported no error message"),
    ],
)
async def test_worker_errors_are_decoded_from_every_encoding(raw: Any, described: str) -> None:
    assert decode_worker_error(raw).describe() == described


async def test_a_failed_job_raises_job_failed_with_the_workers_own_error() -> None:
    client, _ = make_client(
        lambda r: (
            httpx.Response(400, json=job("FAILED", error=SDK_RAISED, workerId="w-7"))
            if op(r) == "runsync"
            else httpx.Response(500)
        )
    )
    with pytest.raises(JobFailed, match="job-1-u1 failed on worker w-7: ValueError: model 'x' is not loaded") as info:
        await client.run_and_wait({"x": 1}, deadline_s=5)
    assert info.value.job_id == "job-1-u1"


async def test_a_timed_out_job_raises_provider_timeout() -> None:
    client, _ = make_client(lambda r: httpx.Response(200, json=job("TIMED_OUT")))
    with pytest.raises(ProviderTimeout, match="TIMED_OUT"):
        await client.run_and_wait({"x": 1}, deadline_s=5)


# --- runsync → status polling -----------------------------------------------------------------


async def test_runsync_not_done_in_time_falls_back_to_status_polls_that_back_off() -> None:
    polls = iter(["IN_QUEUE", "IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS", "IN_PROGRESS"])

    def handler(request: httpx.Request) -> httpx.Response:
        if op(request) == "runsync":
            return httpx.Response(200, json=job("IN_QUEUE", "sync-1"))
        status = next(polls, "COMPLETED")
        return httpx.Response(200, json=job(status, "sync-1", output={"text": "hi"} if status == "COMPLETED" else None))

    client, rec = make_client(handler)
    done = await client.run_and_wait({"x": 1}, deadline_s=30)
    assert done.output == {"text": "hi"}
    assert rec.paths() == ["runsync"] + ["status/sync-1"] * 6
    assert rec.sleeps == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert rec.requests[0].url.params["wait"] == "30000"


async def test_run_and_wait_cancels_the_job_at_its_deadline() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if op(request) == "cancel":
            return httpx.Response(200, json=job("CANCELLED"))
        return httpx.Response(200, json=job("IN_PROGRESS"))

    client, rec = make_client(handler, real_sleep=True)
    with anyio.fail_after(5), pytest.raises(ProviderTimeout, match=r"within 0\.3 s, so it was cancelled"):
        await client.run_and_wait({"x": 1}, deadline_s=0.3)
    assert rec.paths()[0] == "run"  # under 1 s: /runsync cannot wait that little
    assert rec.paths()[-1] == "cancel/job-1-u1"
    assert rec.paths().count("cancel/job-1-u1") == 1


async def test_a_queued_job_on_an_endpoint_without_workers_fails_with_a_hint() -> None:
    queued = iter([3, 4])

    def handler(request: httpx.Request) -> httpx.Response:
        match op(request):
            case "health":
                workers = {"idle": 0, "initializing": 0, "ready": 0, "running": 0, "throttled": 2, "unhealthy": 0}
                return httpx.Response(200, json={"jobs": {"inQueue": next(queued, 5)}, "workers": workers})
            case "cancel":
                return httpx.Response(200, json=job("CANCELLED"))
            case _:
                return httpx.Response(200, json=job("IN_QUEUE"))

    client, rec = make_client(handler, real_sleep=True, queue_check_s=0.05)
    with anyio.fail_after(5), pytest.raises(ProviderUnavailable, match="no workers") as info:
        await client.run_and_wait({"x": 1}, deadline_s=30)
    assert "throttled" in str(info.value)
    assert rec.paths().count("health") == 2 and rec.paths()[-1] == "cancel/job-1-u1"
    assert rec.paths().count("cancel/job-1-u1") == 1


# --- /stream ----------------------------------------------------------------------------------


def stream_pages(pages: Iterable[tuple[str, list[Any]]], *, final_status: str | None = None) -> Handler:
    """A /stream that hands out each (status, outputs) page once, then the terminal status, empty."""
    remaining = list(pages)

    def handler(request: httpx.Request) -> httpx.Response:
        if op(request) == "stream":
            status, outputs = remaining.pop(0) if remaining else (final_status or "COMPLETED", [])
            return httpx.Response(
                200, json={"id": "job-1-u1", "status": status, "stream": [{"output": o} for o in outputs]}
            )
        if op(request) == "run":
            return httpx.Response(200, json=job("IN_QUEUE"))
        if op(request) == "cancel":
            return httpx.Response(200, json=job("CANCELLED"))
        return httpx.Response(200, json=job("FAILED", error=SDK_RAISED))

    return handler


async def test_iter_stream_yields_every_chunk_in_order_and_stops_on_terminal_and_empty() -> None:
    client, rec = make_client(stream_pages([("IN_PROGRESS", ["a", "b"]), ("IN_PROGRESS", ["c"]), ("COMPLETED", ["d"])]))
    assert [o async for o in client.iter_stream("job-1-u1")] == ["a", "b", "c", "d"]
    assert rec.paths() == ["stream/job-1-u1"] * 4  # the 4th confirms nothing is left
    assert all(r.url.params["wait"] == "2000" for r in rec.requests)
    assert rec.sleeps == []  # answers with chunks are never followed by a sleep


async def test_iter_stream_of_a_cancelled_job_ends_instead_of_looping_forever() -> None:
    client, rec = make_client(stream_pages([("IN_PROGRESS", ["a"])], final_status="CANCELLED"))
    seen: list[Any] = []
    with anyio.fail_after(5), pytest.raises(JobFailed, match="cancelled"):
        async for output in client.iter_stream("job-1-u1"):
            seen.append(output)
    assert seen == ["a"] and len(rec.requests) == 2


async def test_iter_stream_of_a_failed_job_reads_the_error_from_status() -> None:
    client, rec = make_client(stream_pages([("IN_PROGRESS", ["a"])], final_status="FAILED"))
    with pytest.raises(JobFailed, match="ValueError: model 'x' is not loaded"):
        async for _ in client.iter_stream("job-1-u1"):
            pass
    assert rec.paths()[-1] == "status/job-1-u1"


async def test_iter_stream_sleeps_briefly_only_after_fast_empty_answers() -> None:
    client, rec = make_client(
        stream_pages([("IN_QUEUE", []), ("IN_PROGRESS", []), ("IN_PROGRESS", []), ("IN_PROGRESS", ["x"])])
    )
    assert [o async for o in client.iter_stream("job-1-u1")] == ["x"]
    assert rec.sleeps == [0.05, 0.1, 0.2]


# --- stream_chat over /run + /stream ----------------------------------------------------------


def chunk(i: int, text: str) -> dict[str, Any]:
    return {"type": "chunk", "index": i, "text": text}


RESULT = {"type": "result", "text": "Yes. A fee applies.", "model": "jamie", "worker_id": "w-1"}


async def test_stream_chat_yields_job_started_deltas_then_the_workers_result() -> None:
    client, rec = make_client(
        stream_pages([("IN_PROGRESS", [chunk(0, "Yes.")]), ("COMPLETED", [chunk(1, " A fee applies."), RESULT])])
    )
    async with client.stream_chat(chat_job(), use_openai_route=False) as chat:
        events = [e async for e in chat]
        assert chat.job_id == "job-1-u1"
    assert events[0] == JobStarted("job-1-u1")
    assert events[1:3] == [TextDelta("Yes."), TextDelta(" A fee applies.")]
    assert isinstance(events[3], ChatResult) and events[3].worker_id == "w-1"
    assert json.loads(rec.requests[0].content)["input"]["stream"] is True
    assert "cancel" not in " ".join(rec.paths())


async def test_cancelling_the_consumer_cancels_the_runpod_job() -> None:
    first_chunk_sent = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        match op(request):
            case "run":
                return httpx.Response(200, json=job("IN_QUEUE"))
            case "cancel":
                return httpx.Response(200, json=job("CANCELLED"))
            case _ if not first_chunk_sent.is_set():
                first_chunk_sent.set()
                return httpx.Response(
                    200, json={"id": "job-1-u1", "status": "IN_PROGRESS", "stream": [{"output": chunk(0, "Hi")}]}
                )
            case _:
                await anyio.sleep_forever()  # a long-poll still waiting when the caller hangs up
                raise AssertionError

    client, rec = make_client(handler)
    received: list[Any] = []

    async def consume() -> None:
        async with client.stream_chat(chat_job(), use_openai_route=False) as chat:
            async for event in chat:
                received.append(event)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await first_chunk_sent.wait()
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert received == [JobStarted("job-1-u1"), TextDelta("Hi")]
    assert rec.paths()[-1] == "cancel/job-1-u1"


async def test_leaving_the_stream_early_cancels_the_job() -> None:
    client, rec = make_client(stream_pages([("IN_PROGRESS", [chunk(0, "Yes.")]), ("IN_PROGRESS", [chunk(1, "more")])]))
    async with client.stream_chat(chat_job(), use_openai_route=False) as chat:
        async for event in chat:
            if isinstance(event, TextDelta):
                break
    assert rec.paths()[-1] == "cancel/job-1-u1"


async def test_a_detached_stream_leaves_the_job_running_when_closed() -> None:
    client, rec = make_client(stream_pages([("IN_PROGRESS", [chunk(0, "Yes.")]), ("IN_PROGRESS", [chunk(1, "more")])]))
    async with client.stream_chat(chat_job(), use_openai_route=False) as chat:
        async for event in chat:
            if isinstance(event, TextDelta):
                assert chat.detach() == "job-1-u1"
                break
    assert "cancel/job-1-u1" not in rec.paths()


async def test_a_cancellation_during_run_still_cancels_the_job_it_created() -> None:
    run_started = anyio.Event()
    release = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if op(request) == "run":
            run_started.set()
            await release.wait()
            return httpx.Response(200, json=job("IN_QUEUE", "late-1"))
        return httpx.Response(200, json=job("CANCELLED", "late-1"))

    client, rec = make_client(handler)

    async def consume() -> None:
        async with client.stream_chat(chat_job(), use_openai_route=False) as chat:
            async for _ in chat:
                pass

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await run_started.wait()
            tg.cancel_scope.cancel()
            release.set()
    assert rec.paths() == ["run", "cancel/late-1"]


async def test_a_worker_error_chunk_fails_the_chat_with_its_code() -> None:
    error = {"type": "error", "code": "model_not_found", "message": "no model jamie"}
    client, _ = make_client(stream_pages([("IN_PROGRESS", [error])]))
    with pytest.raises(JobFailed, match="model_not_found: no model jamie"):
        await client.stream_chat(chat_job(), use_openai_route=False).result()


# --- the OpenAI route (SSE) -------------------------------------------------------------------


def sse(*frames: dict[str, Any] | str) -> str:
    return "".join(f"data: {f if isinstance(f, str) else json.dumps(f)}\n\n" for f in frames)


def openai_chunk(text: str | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    return {
        "id": "chatcmpl-1",
        "model": "jamie",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    } | extra


class ByteChunks(httpx.AsyncByteStream):
    """A response body arriving in the given network pieces; records whether it was closed."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece

    async def aclose(self) -> None:
        self.closed = True


def split_everywhere(text: str, size: int) -> list[bytes]:
    raw = text.replace("\n", "\r\n").encode()
    return [raw[i : i + size] for i in range(0, len(raw), size)]


STREAM = sse(
    openai_chunk("Yes"),
    openai_chunk(", a fee — ½ month."),
    openai_chunk(None, "stop"),
    {"id": "chatcmpl-1", "model": "jamie", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 7}},
    "[DONE]",
)


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64, 10_000])
async def test_openai_stream_parses_sse_frames_split_anywhere_across_network_chunks(piece: int) -> None:
    client, rec = make_client(
        lambda r: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=ByteChunks(split_everywhere(STREAM, piece))
        )
    )
    result = await client.stream_chat(chat_job(), use_openai_route=True).result()
    assert result.text == "Yes, a fee — ½ month."
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (12, 7)
    assert result.timings.ttft_s is not None and result.timings.total_s >= result.timings.ttft_s
    body = json.loads(rec.requests[0].content)
    assert rec.paths() == ["openai/v1/chat/completions"]
    assert body["stream"] is True and body["model"] == "jamie" and body["messages"][0]["role"] == "user"


async def test_openai_stream_without_done_is_reported_as_cut_short() -> None:
    cut = sse(openai_chunk("Yes"), openai_chunk(", a fee")) + 'data: {"id": "chatcmpl-1", "cho'
    client, _ = make_client(lambda r: httpx.Response(200, stream=ByteChunks(split_everywhere(cut, 5))))
    chunks: list[dict[str, Any]] = []
    with pytest.raises(ProviderError, match=r"without `data: \[DONE\]`"):
        async for c in client.openai_chat_stream({"model": "jamie", "messages": []}):
            chunks.append(c)
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["Yes", ", a fee"]


async def test_openai_stream_error_frame_fails_with_the_workers_message() -> None:
    body = sse(openai_chunk("Yes"), {"error": {"message": "model crashed", "type": "worker_error"}})
    client, _ = make_client(lambda r: httpx.Response(200, stream=ByteChunks([body.encode()])))
    with pytest.raises(JobFailed, match="worker_error: model crashed"):
        await client.stream_chat(chat_job(), use_openai_route=True).result()


async def test_leaving_an_openai_stream_early_hangs_up_the_connection() -> None:
    body = ByteChunks([STREAM.encode()])
    client, rec = make_client(lambda r: httpx.Response(200, stream=body))
    async with client.stream_chat(chat_job(), use_openai_route=True) as chat:
        assert await chat.__anext__() == TextDelta("Yes")
        assert not body.closed
    assert body.closed and chat.job_id is None
    assert rec.paths() == ["openai/v1/chat/completions"]


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(500, "FAILED", JobFailed), (504, "TIMED_OUT", ProviderTimeout), (500, None, ProviderUnavailable)],
)
async def test_an_openai_job_that_fails_before_streaming_maps_to_its_error(
    status: int, code: str | None, error: type[Exception]
) -> None:
    body = {"error": {"message": "worker boom", "type": "worker_error", "code": code}} if code else {"detail": "x"}
    client, rec = make_client(lambda r: httpx.Response(status, json=body))
    with pytest.raises(error):
        await client.stream_chat(chat_job(), use_openai_route=True).result()
    assert len(rec.requests) == 1


# --- endpoint calls and the factory -----------------------------------------------------------


async def test_health_purge_retry_and_models_parse_the_documented_shapes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        match op(request):
            case "health":
                return httpx.Response(
                    200,
                    json={
                        "jobs": {"completed": 1, "failed": 5, "inProgress": 2, "inQueue": 3, "retried": 0},
                        "workers": {
                            "idle": 1,
                            "initializing": 0,
                            "ready": 1,
                            "running": 2,
                            "throttled": 0,
                            "unhealthy": 0,
                        },
                    },
                )
            case "purge-queue":
                return httpx.Response(200, json={"removed": 2, "status": "completed"})
            case "retry":
                return httpx.Response(200, json=job("IN_QUEUE", "f-1"))
            case _:
                return httpx.Response(200, json={"object": "list", "data": [{"id": "jamie"}]})

    client, rec = make_client(handler)
    health = await client.health()
    assert (health.jobs.in_queue, health.jobs.in_progress, health.workers.serving) == (3, 2, 4)
    assert (await client.purge_queue()).removed == 2
    assert (await client.retry("f-1")).status is JobStatus.IN_QUEUE
    assert (await client.openai_models())["data"][0]["id"] == "jamie"
    assert [r.method for r in rec.requests] == ["GET", "POST", "POST", "GET"]
    assert rec.paths() == ["health", "purge-queue", "retry/f-1", "openai/v1/models"]


async def test_factory_targets_the_local_endpoint_without_credentials() -> None:
    async with httpx.AsyncClient() as http:
        local = runpod_client_from_settings(
            Settings(_env_file=None, local_endpoint_port=9999, local_endpoint_id="loc"),  # type: ignore[call-arg]
            http,
        )
        real = runpod_client_from_settings(
            Settings(_env_file=None, runpod_api_key=SecretStr("k"), runpod_endpoint_id="abc"),  # type: ignore[call-arg]
            http,
        )
    assert local.endpoint_url == "http://127.0.0.1:9999/v2/loc"
    assert real.endpoint_url == "https://api.runpod.ai/v2/abc"


async def test_the_local_endpoints_errors_name_the_local_settings() -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(401)))
    client = runpod_client_from_settings(Settings(_env_file=None), http)  # type: ignore[call-arg]
    with pytest.raises(AuthError, match="check LOCAL_API_KEY"):
        await client.health()


# --- a job RunPod re-runs on another worker mid-reply ------------------------------------------


async def test_a_stream_job_that_starts_over_after_text_was_relayed_fails_instead_of_repeating() -> None:
    restarted = [("IN_PROGRESS", [chunk(0, "The laundry")]), ("IN_PROGRESS", [chunk(0, "The laundry room")])]
    client, _ = make_client(stream_pages(restarted))
    relayed: list[str] = []
    with pytest.raises(ProviderError, match="restarted the job on another worker"):
        async with client.stream_chat(chat_job(), use_openai_route=False) as chat:
            async for event in chat:
                if isinstance(event, TextDelta):
                    relayed.append(event.text)
    assert relayed == ["The laundry"]


async def test_an_openai_stream_whose_completion_id_changes_mid_reply_fails_instead_of_repeating() -> None:
    body = sse(openai_chunk("The laundry"), openai_chunk("The laundry room", id="chatcmpl-2"), "[DONE]")
    client, _ = make_client(lambda r: httpx.Response(200, stream=ByteChunks([body.encode()])))
    with pytest.raises(ProviderError, match="restarted the job on another worker"):
        await client.stream_chat(chat_job(), use_openai_route=True).result()
