"""The local endpoint's HTTP API in-process: public shapes, auth, limits, faults, worker routes.

The test plays the worker over the real worker-side routes (`ScriptedWorker`), so every
public answer here comes from the same code the real SDK workers talk to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from pete_mcp.local.localpod import LocalPodConfig
from tests.support.localpod import inprocess_pod

pytestmark = pytest.mark.anyio

ConfigFactory = Callable[..., LocalPodConfig]


async def test_bearer_and_raw_keys_are_accepted_and_a_wrong_key_gets_401(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        assert (await pod.raw.get("/v2/local/health", headers={"Authorization": "Bearer test-key"})).status_code == 200
        assert (await pod.raw.get("/v2/local/health", headers={"Authorization": "test-key"})).status_code == 200
        for headers in ({"Authorization": "Bearer nope"}, {}):
            response = await pod.raw.post("/v2/local/run", json={"input": {}}, headers=headers)
            assert response.status_code == 401
        assert pod.state.board.counts()["inQueue"] == 0


async def test_an_unknown_endpoint_id_gets_404(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        response = await pod.raw.post("/v2/other/run", json={"input": {}}, headers={"Authorization": "test-key"})
        assert response.status_code == 404


async def test_run_then_stream_then_status_follow_the_runpod_shapes(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        submitted = (await pod.client.post("/run", json={"input": {"prompt": "hi"}})).json()
        assert submitted == {"id": submitted["id"], "status": "IN_QUEUE"}
        job_id = submitted["id"]

        job = await pod.worker.take()
        assert job == {"id": job_id, "input": {"prompt": "hi"}}
        await pod.worker.stream(job_id, "Hello")
        await pod.worker.stream(job_id, {"text": " there"})

        first = (await pod.client.get(f"/stream/{job_id}")).json()
        assert first["status"] == "IN_PROGRESS"
        assert first["stream"] == [{"output": "Hello"}, {"output": {"text": " there"}}]
        await pod.worker.done(job_id, {"output": []}, is_stream=True)
        last = (await pod.client.post(f"/stream/{job_id}")).json()
        assert (last["status"], last["stream"]) == ("COMPLETED", [])

        status = (await pod.client.get(f"/status/{job_id}")).json()
        assert set(status) == {"id", "status", "delayTime", "executionTime", "workerId", "output"}
        assert (status["status"], status["workerId"], status["output"]) == ("COMPLETED", pod.worker.id, [])
        assert (await pod.client.post(f"/status/{job_id}")).json() == status
        assert (await pod.client.get("/status/no-such-job")).status_code == 404


async def test_stream_long_poll_returns_as_soon_as_a_chunk_arrives(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        job_id = (await pod.client.post("/run", json={"input": {}})).json()["id"]
        await pod.worker.take()
        started = time.monotonic()
        poll = asyncio.create_task(pod.client.get(f"/stream/{job_id}?wait=5000"))
        await asyncio.sleep(0.05)
        await pod.worker.stream(job_id, "first")
        answer = (await poll).json()
        assert answer["stream"] == [{"output": "first"}]
        assert time.monotonic() - started < 2


async def test_runsync_not_done_in_time_answers_id_and_status_only(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        started = time.monotonic()
        answer = (await pod.client.post("/runsync?wait=1000", json={"input": {}})).json()
        assert time.monotonic() - started >= 0.95
        assert answer == {"id": answer["id"], "status": "IN_QUEUE"}
        assert answer["id"].startswith("sync-")


async def test_runsync_done_in_time_answers_the_job_object(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:

        async def serve_one() -> None:
            job = None
            while job is None:
                job = await pod.worker.take()
            await pod.worker.done(job["id"], {"output": {"echo": job["input"]["x"]}})

        worker = asyncio.create_task(serve_one())
        answer = (await pod.client.post("/runsync", json={"input": {"x": 7}})).json()
        await worker
        assert answer["status"] == "COMPLETED"
        assert answer["output"] == {"echo": 7}
        assert answer["workerId"] == pod.worker.id


@pytest.mark.parametrize("wait", ["999", "300001", "soon"])
async def test_runsync_rejects_a_wait_outside_1000_to_300000_ms(localpod_config: ConfigFactory, wait: str) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        assert (await pod.client.post(f"/runsync?wait={wait}", json={"input": {}})).status_code == 400


async def test_bad_submissions_get_400_and_oversized_ones_413(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config(run_body_limit=2048)) as pod:
        assert (await pod.client.post("/run", json={"no_input": 1})).status_code == 400
        assert (await pod.client.post("/run", content=b"{not json")).status_code == 400
        bad_policy = {"input": {}, "policy": {"executionTimeout": 10}}
        assert (await pod.client.post("/run", json={**bad_policy, "policy": {"ttl": "soon"}})).status_code == 400
        assert (await pod.client.post("/run", json={"input": {}, "webhook": "ftp://x"})).status_code == 400
        assert (await pod.client.post("/run", json={"input": "x" * 4096})).status_code == 413
        assert (await pod.client.post("/runsync?wait=1000", json={"input": "x" * 4096})).status_code == 200
        assert pod.state.board.counts()["inQueue"] == 1


async def test_progress_updates_show_in_status_while_the_job_runs(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        job_id = (await pod.client.post("/run", json={"input": {}})).json()["id"]
        await pod.worker.take()
        await pod.worker.done(job_id, {"status": "IN_PROGRESS", "output": {"step": 1}})
        status = (await pod.client.get(f"/status/{job_id}")).json()
        assert (status["status"], status["output"]) == ("IN_PROGRESS", {"step": 1})


async def test_an_error_result_fails_the_job_and_keeps_its_output(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        job_id = (await pod.client.post("/run", json={"input": {}})).json()["id"]
        await pod.worker.take()
        await pod.worker.done(job_id, {"output": {"partial": True}, "error": "custom err"})
        status = (await pod.client.get(f"/status/{job_id}")).json()
        assert (status["status"], status["error"], status["output"]) == ("FAILED", "custom err", {"partial": True})
        assert (await pod.client.get("/health")).json()["jobs"]["failed"] == 1


async def test_cancel_reaches_the_workers_job_stop_and_late_posts_are_ignored(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        job_id = (await pod.client.post("/run", json={"input": {}})).json()["id"]
        await pod.worker.take()
        stop_poll = asyncio.create_task(pod.worker.stop_signals())
        await asyncio.sleep(0.05)
        assert (await pod.client.post(f"/cancel/{job_id}")).json() == {"id": job_id, "status": "CANCELLED"}
        assert await asyncio.wait_for(stop_poll, 2) == [job_id]
        await pod.worker.stream(job_id, "late chunk")
        await pod.worker.done(job_id, {"output": "late"})
        status = (await pod.client.get(f"/status/{job_id}")).json()
        assert status["status"] == "CANCELLED" and "output" not in status
        assert (await pod.client.get(f"/stream/{job_id}?wait=0")).json()["stream"] == []


async def test_cancelling_a_queued_job_removes_it_from_the_queue(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config(take_hold_s=0.2)) as pod:
        job_id = (await pod.client.post("/run", json={"input": {}})).json()["id"]
        await pod.client.post(f"/cancel/{job_id}")
        assert await pod.worker.take() is None
        assert (await pod.client.get("/health")).json()["jobs"]["inQueue"] == 0


async def test_retry_requeues_a_failed_job_under_the_same_id(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        job_id = (await pod.client.post("/run", json={"input": {"n": 1}})).json()["id"]
        await pod.worker.take()
        assert (await pod.client.post(f"/retry/{job_id}")).status_code == 400  # still running
        await pod.worker.done(job_id, {"error": "boom"})
        assert (await pod.client.post(f"/retry/{job_id}")).json() == {"id": job_id, "status": "IN_QUEUE"}
        assert await pod.worker.take() == {"id": job_id, "input": {"n": 1}}
        await pod.worker.done(job_id, {"output": "ok"})
        status = (await pod.client.get(f"/status/{job_id}")).json()
        assert (status["status"], status["output"], status["retries"]) == ("COMPLETED", "ok", 1)
        assert "error" not in status
        assert (await pod.client.get("/health")).json()["jobs"]["retried"] == 1


async def test_health_counts_match_the_jobs_and_workers(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        idle = pod.add_worker()
        ids = [(await pod.client.post("/run", json={"input": {"n": n}})).json()["id"] for n in range(4)]
        health = (await pod.client.get("/health")).json()
        assert health["jobs"] == {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 4, "retried": 0}
        assert health["workers"]["initializing"] == 2  # neither has asked for a job yet

        taken = await pod.worker.take(batch_size=2)
        assert [job["id"] for job in taken] == ids[:2]
        await pod.worker.done(ids[0], {"output": 1})
        await pod.worker.done(ids[1], {"error": "x"})
        third = await idle.take()
        assert third["id"] == ids[2]
        health = (await pod.client.get("/health")).json()
        assert health["jobs"] == {"completed": 1, "failed": 1, "inProgress": 1, "inQueue": 1, "retried": 0}
        assert health["workers"] == {
            "idle": 1,
            "initializing": 0,
            "ready": 0,
            "running": 1,
            "throttled": 0,
            "unhealthy": 0,
        }


async def test_purge_queue_removes_queued_jobs_but_not_running_ones(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        running = (await pod.client.post("/run", json={"input": {}})).json()["id"]
        await pod.worker.take()
        for _ in range(3):
            await pod.client.post("/run", json={"input": {}})
        assert (await pod.client.post("/purge-queue")).json() == {"removed": 3, "status": "completed"}
        jobs = (await pod.client.get("/health")).json()["jobs"]
        assert (jobs["inQueue"], jobs["inProgress"]) == (0, 1)
        assert (await pod.client.get(f"/status/{running}")).json()["status"] == "IN_PROGRESS"


async def test_an_expired_ttl_makes_the_job_404(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        job_id = (await pod.client.post("/run", json={"input": {}, "policy": {"ttl": 200}})).json()["id"]
        assert (await pod.client.get(f"/status/{job_id}")).status_code == 200
        await asyncio.sleep(0.25)
        assert (await pod.client.get(f"/status/{job_id}")).status_code == 404
        assert (await pod.client.get("/health")).json()["jobs"]["inQueue"] == 0


async def test_runsync_results_expire_after_their_retention(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config(sync_retention_s=0.2, take_hold_s=0.2)) as pod:
        answer = (await pod.client.post("/runsync?wait=1000", json={"input": {}})).json()
        await pod.worker.take()
        await pod.worker.done(answer["id"], {"output": "x"})
        assert (await pod.client.get(f"/status/{answer['id']}")).json()["status"] == "COMPLETED"
        await asyncio.sleep(0.25)
        assert (await pod.client.get(f"/status/{answer['id']}")).status_code == 404


async def test_the_webhook_is_retried_until_it_answers_200(localpod_config: ConfigFactory) -> None:
    calls: list[httpx.Request] = []

    def hook(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500 if len(calls) < 3 else 200)

    async with inprocess_pod(localpod_config(), webhook_transport=httpx.MockTransport(hook)) as pod:
        submission = {"input": {}, "webhook": "https://hooks.example/done?token=t"}
        job_id = (await pod.client.post("/run", json=submission)).json()["id"]
        await pod.worker.take()
        await pod.worker.done(job_id, {"output": {"ok": True}})
        await pod.state.webhooks.drain()
        assert len(calls) == 3
        body = calls[-1].read()
        assert b'"status":"COMPLETED"' in body.replace(b" ", b"") and job_id.encode() in body


async def test_the_job_take_long_poll_is_held_and_woken_by_a_submission(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config(take_hold_s=5.0)) as pod:
        take = asyncio.create_task(pod.worker.take())
        await asyncio.sleep(0.2)
        assert not take.done()
        assert (await pod.client.get("/health")).json()["workers"]["ready"] == 1
        started = time.monotonic()
        job_id = (await pod.client.post("/run", json={"input": {}})).json()["id"]
        assert (await take)["id"] == job_id
        assert time.monotonic() - started < 0.5


async def test_an_empty_job_take_answers_204_after_the_hold(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config(take_hold_s=0.3)) as pod:
        started = time.monotonic()
        assert await pod.worker.take() is None
        assert time.monotonic() - started >= 0.3


async def test_worker_routes_need_that_workers_own_secret(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        url = f"/v2/local/job-take/{pod.worker.id}?gpu=LOCAL&job_in_progress=0"
        for key in ("test-key", f"Bearer {pod.worker.worker.secret}", "wrong"):
            assert (await pod.raw.get(url, headers={"Authorization": key})).status_code == 401


async def test_injected_429s_answer_for_the_given_count_then_the_route_works(
    localpod_config: ConfigFactory,
) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        pod.state.faults.fail_route("run", 429, count=2)
        pod.state.faults.fail_route("status", 503)
        statuses = [(await pod.client.post("/run", json={"input": {}})).status_code for _ in range(3)]
        assert statuses == [429, 429, 200]
        assert (await pod.client.get("/status/anything")).status_code == 503
        assert (await pod.client.get("/health")).status_code == 200


async def test_a_share_of_calls_fails_with_a_seeded_fault(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config(fault_seed=7)) as pod:
        pod.state.faults.fail_route("*", 500, share=0.5)
        statuses = [(await pod.client.get("/health")).status_code for _ in range(200)]
        assert set(statuses) == {200, 500}
        assert 60 <= statuses.count(500) <= 140


async def test_faults_can_be_armed_and_cleared_over_the_admin_route(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        auth = {"Authorization": "Bearer test-key"}
        plan = {"route_errors": [{"route": "health", "status": 429, "count": 1}], "stream_delay_ms": 50}
        assert (await pod.raw.post("/_admin/faults", json=plan)).status_code == 401
        armed = (await pod.raw.post("/_admin/faults", json=plan, headers=auth)).json()
        assert armed["stream_delay_s"] == 0.05 and armed["route_errors"][0]["status"] == 429
        assert (await pod.client.get("/health")).status_code == 429
        assert (await pod.client.get("/health")).status_code == 200
        bad = {"route_errors": [{"route": "nowhere", "status": 429}]}
        assert (await pod.raw.post("/_admin/faults", json=bad, headers=auth)).status_code == 400
        assert (await pod.raw.request("DELETE", "/_admin/faults", headers=auth)).json()["stream_delay_s"] == 0


async def test_a_job_stall_fault_shows_in_delay_time(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config(take_hold_s=3.0)) as pod:
        pod.state.faults.stall_jobs(0.4, count=1)
        job_id = (await pod.client.post("/run", json={"input": {}})).json()["id"]
        job = await pod.worker.take()
        assert job["id"] == job_id
        assert (await pod.client.get(f"/status/{job_id}")).json()["delayTime"] >= 400


async def test_stop_pod_retires_the_worker(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        job_id = (await pod.client.post("/run", json={"input": {}})).json()["id"]
        await pod.worker.take()
        await pod.worker.done(job_id, {"output": {}, "stopPod": True})
        assert (await pod.client.get(f"/status/{job_id}")).json()["status"] == "COMPLETED"
        assert pod.state.workers.get(pod.worker.id) is None


async def test_the_openai_route_becomes_a_job_and_answers_the_aggregated_element(
    localpod_config: ConfigFactory,
) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        body = {"model": "jamie", "messages": [{"role": "user", "content": "hi"}]}
        call = asyncio.create_task(pod.client.post("/openai/v1/chat/completions", json=body))
        job = None
        while job is None:
            job = await pod.worker.take()
        assert job["input"] == {"openai_route": "/v1/chat/completions", "openai_input": body}
        completion = {"object": "chat.completion", "choices": [{"message": {"content": "hello"}}]}
        await pod.worker.done(job["id"], {"output": [completion]}, is_stream=True)
        response = await call
        assert response.status_code == 200 and response.json() == completion


async def test_the_openai_route_reports_a_failed_job_as_an_error(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        call = asyncio.create_task(pod.client.get("/openai/v1/models"))
        job = None
        while job is None:
            job = await pod.worker.take()
        assert job["input"] == {"openai_route": "/v1/models"}
        await pod.worker.done(job["id"], {"error": "model server down"})
        response = await call
        assert response.status_code == 500
        assert response.json()["error"]["message"] == "model server down"


async def test_a_slow_stream_fault_holds_each_chunk(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        job_id = (await pod.client.post("/run", json={"input": {}})).json()["id"]
        await pod.worker.take()
        pod.state.faults.slow_stream(0.3)
        started = time.monotonic()
        await pod.worker.stream(job_id, "slow")
        assert time.monotonic() - started >= 0.3
        assert (await pod.client.get(f"/stream/{job_id}?wait=0")).json()["stream"] == [{"output": "slow"}]


async def test_killing_a_worker_over_the_admin_route_requeues_its_job(localpod_config: ConfigFactory) -> None:
    async with inprocess_pod(localpod_config()) as pod:
        auth = {"Authorization": "Bearer test-key"}
        job_id = (await pod.client.post("/run", json={"input": {}})).json()["id"]
        await pod.worker.take()
        listing = (await pod.raw.get("/_admin/workers", headers=auth)).json()["workers"]
        assert listing[0]["running"] == [job_id]
        killed = await pod.raw.post("/_admin/kill-worker", json={"job_id": job_id}, headers=auth)
        assert killed.json() == {"killed": pod.worker.id}
        status = (await pod.client.get(f"/status/{job_id}")).json()
        assert status == {"id": job_id, "status": "IN_QUEUE", "retries": 1}
        missing = await pod.raw.post("/_admin/kill-worker", json={"job_id": job_id}, headers=auth)
        assert missing.status_code == 404
