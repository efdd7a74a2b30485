"""The local endpoint with real runpod-SDK worker processes (tests/support/workers/) on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import pytest

from pete_mcp.local.localpod import LocalPod, LocalPodConfig
from tests.support.localpod import (
    live_group_members,
    pod_client,
    poll_until,
    process_alive,
    running_localpod,
    wait_for_file,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("runpod_sdk")]

ConfigFactory = Callable[..., LocalPodConfig]
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


async def read_whole_stream(client: httpx.AsyncClient, job_id: str) -> tuple[list[Any], str]:
    """Poll /stream like a client should: until a terminal status with an empty stream."""
    chunks: list[Any] = []
    async with asyncio.timeout(30):
        while True:
            answer = (await client.get(f"/stream/{job_id}", params={"wait": 2000})).json()
            chunks.extend(item["output"] for item in answer["stream"])
            if answer["status"] in TERMINAL and not answer["stream"]:
                return chunks, answer["status"]


async def status_of(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    return (await client.get(f"/status/{job_id}")).json()


async def test_run_then_stream_delivers_every_chunk_in_order(localpod_config: ConfigFactory) -> None:
    async with running_localpod(localpod_config()) as pod, pod_client(pod) as client:
        chunks = [f"chunk {n}. " for n in range(12)]
        job_id = (await client.post("/run", json={"input": {"chunks": chunks, "delay_s": 0.02}})).json()["id"]
        streamed, status = await read_whole_stream(client, job_id)
        assert (streamed, status) == (chunks, "COMPLETED")
        final = await status_of(client, job_id)
        assert final["output"] == chunks  # return_aggregate_stream
        assert final["workerId"] == pod.state.workers.all()[0].id
        assert final["executionTime"] >= 12 * 20
        health = (await client.get("/health")).json()
        assert health["jobs"] == {"completed": 1, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0}
        workers = health["workers"]
        assert (workers["idle"], workers["running"], workers["initializing"], workers["unhealthy"]) == (1, 0, 0, 0)


async def test_runsync_in_time_and_not_in_time(localpod_config: ConfigFactory) -> None:
    async with running_localpod(localpod_config()) as pod, pod_client(pod) as client:
        quick = (await client.post("/runsync", json={"input": {"chunks": ["done"]}})).json()
        assert (quick["status"], quick["output"]) == ("COMPLETED", ["done"])

        slow = (await client.post("/runsync?wait=1000", json={"input": {"sleep_s": 2.5}})).json()
        assert slow == {"id": slow["id"], "status": "IN_PROGRESS"}
        final = (await client.get(f"/status-sync/{slow['id']}?wait=10000")).json()
        assert final["status"] == "COMPLETED"


async def test_the_openai_route_streams_the_workers_sse_in_order(localpod_config: ConfigFactory) -> None:
    async with running_localpod(localpod_config()) as pod:
        llm = openai.AsyncOpenAI(base_url=f"{pod.endpoint_url}/openai/v1", api_key=pod.api_key, max_retries=0)
        text = "the rent is due on the first of each month"
        messages: list[Any] = [{"role": "user", "content": text}]
        stream = await llm.chat.completions.create(model="echo", messages=messages, stream=True)
        deltas = [chunk.choices[0].delta.content async for chunk in stream]
        assert "".join(d for d in deltas if d) == text
        assert len(deltas) == len(text.split())

        completion = await llm.chat.completions.create(model="echo", messages=messages)
        assert completion.choices[0].message.content == text
        models = await llm.models.list()
        assert [m.id for m in models.data] == ["echo"]
        await llm.close()


async def test_cancel_mid_stream_stops_the_workers_generation(localpod_config: ConfigFactory, marker_dir: Path) -> None:
    async with running_localpod(localpod_config()) as pod, pod_client(pod) as client:
        job_input = {"chunks": ["c0", "c1", "c2"], "delay_s": 0.05, "sleep_s": 60}
        job_id = (await client.post("/run", json={"input": job_input})).json()["id"]
        seen: list[Any] = []
        while len(seen) < 3:
            seen += [item["output"] for item in (await client.get(f"/stream/{job_id}")).json()["stream"]]
        assert (await client.post(f"/cancel/{job_id}")).json() == {"id": job_id, "status": "CANCELLED"}
        # The handler, awaiting inside itself, sees CancelledError (it writes the marker).
        await wait_for_file(marker_dir / f"{job_id}.cancelled")
        assert not (marker_dir / f"{job_id}.finished").exists()
        assert (await status_of(client, job_id))["status"] == "CANCELLED"
        # The worker (concurrency 1) is free again and serves the next job.
        nxt = (await client.post("/runsync", json={"input": {"chunks": ["next"]}})).json()
        assert nxt["status"] == "COMPLETED"


async def test_cancel_while_the_worker_posts_a_chunk_frees_the_worker(localpod_config: ConfigFactory) -> None:
    async with running_localpod(localpod_config(record_worker_wire=True)) as pod, pod_client(pod) as client:
        pod.faults.slow_stream(0.5)  # the worker spends its time inside the stream post
        job_id = (await client.post("/run", json={"input": {"chunks": [f"c{n}" for n in range(20)]}})).json()["id"]
        assert (await client.get(f"/stream/{job_id}?wait=10000")).json()["stream"]
        await client.post(f"/cancel/{job_id}")
        posts_at_cancel = len([r for r in pod.wire_log.of("job-stream") if job_id in r.path])
        pod.faults.clear()
        # The SDK stops the job at the post it is awaiting. (Its generator is then only dropped,
        # not closed: a handler learns of the stop when it is garbage-collected, at its yield.)
        nxt = (await client.post("/runsync", json={"input": {"chunks": ["next"]}})).json()
        assert nxt["status"] == "COMPLETED"
        (worker,) = pod.state.workers.all()
        assert nxt["workerId"] == worker.id
        posts_after = len([r for r in pod.wire_log.of("job-stream") if job_id in r.path])
        assert posts_after <= posts_at_cancel + 1


async def test_hanging_up_an_openai_stream_cancels_the_job(localpod_config: ConfigFactory, marker_dir: Path) -> None:
    async with running_localpod(localpod_config()) as pod:
        body = {
            "model": "echo",
            "stream": True,
            "delay_s": 0.1,
            "messages": [{"role": "user", "content": " ".join(["word"] * 100)}],
        }
        headers = {"Authorization": f"Bearer {pod.api_key}"}
        async with (
            httpx.AsyncClient(timeout=30) as http,
            http.stream("POST", f"{pod.endpoint_url}/openai/v1/chat/completions", json=body, headers=headers) as r,
        ):
            assert r.headers["content-type"].startswith("text/event-stream")
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    break  # hang up after the first frame
            (running,) = pod.state.board.running()
            job_id = running.id
        await wait_for_file(marker_dir / f"{job_id}.cancelled")
        assert pod.state.board.get(job_id).status.value == "CANCELLED"  # type: ignore[union-attr]


async def test_an_execution_timeout_times_the_job_out_and_stops_the_worker(
    localpod_config: ConfigFactory, marker_dir: Path
) -> None:
    async with running_localpod(localpod_config()) as pod, pod_client(pod) as client:
        submission = {"input": {"sleep_s": 60}, "policy": {"executionTimeout": 1000}}
        job_id = (await client.post("/run", json=submission)).json()["id"]
        final = (await client.get(f"/status-sync/{job_id}?wait=20000")).json()
        assert final["status"] == "TIMED_OUT"
        assert 1000 <= final["executionTime"] < 3000
        await wait_for_file(marker_dir / f"{job_id}.cancelled")
        assert (await client.get("/health")).json()["jobs"]["failed"] == 1


async def test_a_killed_workers_job_is_requeued_once_then_fails_and_the_worker_is_replaced(
    localpod_config: ConfigFactory, marker_dir: Path
) -> None:
    async with running_localpod(localpod_config()) as pod, pod_client(pod) as client:
        chunks = [f"c{n}" for n in range(100)]
        job_id = (await client.post("/run", json={"input": {"chunks": chunks, "delay_s": 0.05}})).json()["id"]
        first_worker = (await poll_until(lambda: status_of(client, job_id), lambda s: "workerId" in s))["workerId"]
        first_pid = int((await wait_for_file(marker_dir / f"{job_id}.started")).split()[0])
        first_group = pod.state.workers.get(first_worker).pid  # type: ignore[union-attr]
        assert first_group is not None
        assert pod.kill_worker(job_id=job_id) == first_worker

        retried = await poll_until(
            lambda: status_of(client, job_id), lambda s: s.get("workerId") not in (None, first_worker)
        )
        assert (retried["status"], retried["retries"]) == ("IN_PROGRESS", 1)
        assert live_group_members(first_group) == [] and not process_alive(first_pid)
        second_worker = retried["workerId"]
        assert pod.kill_worker(job_id=job_id) == second_worker

        final = await poll_until(lambda: status_of(client, job_id), lambda s: s["status"] in TERMINAL)
        assert final["status"] == "FAILED"
        assert second_worker in final["error"] and final["retries"] == 1
        health = (await client.get("/health")).json()
        assert (health["jobs"]["retried"], health["jobs"]["failed"]) == (1, 1)
        await pod.wait_for_workers(1, timeout_s=30)  # a third worker replaced the second
        assert {w.id for w in pod.state.workers.all()}.isdisjoint({first_worker, second_worker})


async def test_scale_from_zero_shows_the_cold_start_in_delay_time_then_idles_down(
    localpod_config: ConfigFactory,
) -> None:
    config = localpod_config(min_workers=0, max_workers=1, cold_start_s=1.0, idle_timeout_s=1.0)
    async with running_localpod(config) as pod, pod_client(pod) as client:
        assert pod.health()["workers"]["initializing"] == 0
        pod.faults.stall_cold_start(0.5, count=1)  # this cold start stalls half a second more
        job_id = (await client.post("/run", json={"input": {"chunks": ["x"]}})).json()["id"]
        health = await poll_until(lambda: client.get("/health"), lambda r: r.json()["workers"]["initializing"] == 1)
        assert health.json()["jobs"]["inQueue"] == 1
        cold = (await client.get(f"/status-sync/{job_id}?wait=30000")).json()
        assert cold["status"] == "COMPLETED"
        assert cold["delayTime"] >= 1500
        warm = (await client.post("/runsync", json={"input": {"chunks": ["y"]}})).json()
        assert warm["workerId"] == cold["workerId"] and warm["delayTime"] < 1500

        def no_workers(response: httpx.Response) -> bool:
            return sum(response.json()["workers"].values()) == 0

        await poll_until(lambda: client.get("/health"), no_workers, timeout_s=15)


async def test_a_second_worker_starts_when_a_job_waits_past_the_queue_delay(localpod_config: ConfigFactory) -> None:
    config = localpod_config(min_workers=1, max_workers=2, queue_delay_s=0.3)
    async with running_localpod(config) as pod, pod_client(pod) as client:
        ids = [(await client.post("/run", json={"input": {"sleep_s": 3}})).json()["id"] for _ in range(2)]
        finals = [(await client.get(f"/status-sync/{i}?wait=30000")).json() for i in ids]
        assert [f["status"] for f in finals] == ["COMPLETED", "COMPLETED"]
        assert finals[0]["workerId"] != finals[1]["workerId"]
        assert finals[1]["delayTime"] >= 300
        assert len(pod.state.workers.all()) == 2


async def test_a_worker_with_concurrency_takes_jobs_in_a_batch(localpod_config: ConfigFactory) -> None:
    config = localpod_config(worker_env={"ECHO_CONCURRENCY": "3"}, record_worker_wire=True)
    async with running_localpod(config) as pod, pod_client(pod) as client:
        ids = [(await client.post("/run", json={"input": {"sleep_s": 2}})).json()["id"] for _ in range(3)]
        await poll_until(lambda: client.get("/health"), lambda r: r.json()["jobs"]["inProgress"] == 3, timeout_s=10)
        finals = [(await client.get(f"/status-sync/{i}?wait=20000")).json() for i in ids]
        assert {f["status"] for f in finals} == {"COMPLETED"}
        assert len({f["workerId"] for f in finals}) == 1
        batch_takes = pod.wire_log.of("job-take-batch")
        assert batch_takes and dict(batch_takes[0].query)["batch_size"] == "3"


async def test_a_plain_handlers_exception_fails_the_job_with_the_sdks_error(localpod_config: ConfigFactory) -> None:
    async with running_localpod(localpod_config(worker="plain_echo")) as pod, pod_client(pod) as client:
        ok = (await client.post("/runsync", json={"input": {"echo": "hi"}})).json()
        assert (ok["status"], ok["output"]) == ("COMPLETED", {"echo": "hi"})
        failed = (await client.post("/runsync", json={"input": {"raise": "bad input"}})).json()
        assert failed["status"] == "FAILED"
        error = json.loads(failed["error"])
        assert error["error_message"] == "bad input" and error["worker_id"] == failed["workerId"]


async def test_a_worker_asking_to_stop_is_replaced(localpod_config: ConfigFactory) -> None:
    async with running_localpod(localpod_config(worker="plain_echo")) as pod, pod_client(pod) as client:
        first = (await client.post("/runsync", json={"input": {"echo": 1, "refresh": True}})).json()
        assert first["status"] == "COMPLETED"
        second = (await client.post("/runsync", json={"input": {"echo": 2}})).json()
        assert second["status"] == "COMPLETED"
        assert second["workerId"] != first["workerId"]


async def test_a_worker_that_dies_at_start_is_restarted_with_backoff(localpod_config: ConfigFactory) -> None:
    config = localpod_config(worker_command=(sys.executable, "-c", "raise SystemExit(3)"), restart_backoff_max_s=5)
    async with LocalPod(config) as pod:
        assert pod.run_dir is not None
        logs = anyio.Path(pod.run_dir / "logs")

        async def starts() -> int:
            return len([p async for p in logs.iterdir()]) if await logs.exists() else 0

        await poll_until(starts, lambda n: n >= 3, timeout_s=15)
        began = time.monotonic()
        await poll_until(starts, lambda n: n >= 4, timeout_s=15)
        assert time.monotonic() - began >= 1.0  # the fourth start waited ~2 s: backoff, not a tight loop
        assert pod.health()["workers"]["idle"] == 0


async def test_a_hung_worker_is_killed_when_its_heartbeat_stops_and_its_job_requeued(
    localpod_config: ConfigFactory, marker_dir: Path
) -> None:
    config = localpod_config(ping_interval_ms=1000, heartbeat_misses=3)
    async with running_localpod(config) as pod, pod_client(pod) as client:
        job_id = (await client.post("/run", json={"input": {"chunks": ["a", "b"], "delay_s": 2}})).json()["id"]
        pid = int((await wait_for_file(marker_dir / f"{job_id}.started")).split()[0])
        hung = (await status_of(client, job_id))["workerId"]
        group = pod.state.workers.get(hung).pid  # type: ignore[union-attr]
        assert group is not None
        os.killpg(group, signal.SIGSTOP)  # the worker and its heartbeat process freeze
        unhealthy = await poll_until(
            lambda: client.get("/health"), lambda r: r.json()["workers"]["unhealthy"] == 1, timeout_s=10
        )
        assert unhealthy.json()["workers"]["unhealthy"] == 1
        final = (await client.get(f"/status-sync/{job_id}?wait=60000")).json()
        assert final["status"] == "COMPLETED" and final["retries"] == 1
        assert final["workerId"] != hung
        assert live_group_members(group) == [] and not process_alive(pid)
