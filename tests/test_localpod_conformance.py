"""Conformance: the worker protocol the installed runpod SDK speaks is the one our routes parse.

A real, unmodified SDK worker runs against the local endpoint with wire recording on; every
request it sent (take, stream, done, ping, stop) is checked for its exact path, query,
headers and body, and must fully match one of the endpoint's worker routes.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable

import pytest
from starlette.routing import Match, Route

from pete_mcp.local.localpod import LocalPodConfig, WireRecord, build_localpod_app
from tests.support.localpod import REPO_ROOT, pod_client, running_localpod

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("runpod_sdk")]

ConfigFactory = Callable[..., LocalPodConfig]


def locked_version(package: str) -> str:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    (version,) = [p["version"] for p in lock["package"] if p["name"] == package]
    return version


def test_the_installed_runpod_sdk_is_the_locked_version() -> None:
    import runpod

    assert runpod.__version__ == locked_version("runpod") == "1.12.0"


def matching_routes(routes: list[Route], record: WireRecord) -> list[str]:
    scope = {"type": "http", "method": record.method, "path": record.path}
    return [route.path for route in routes if route.matches(scope)[0] is Match.FULL]


async def test_a_real_sdk_worker_speaks_exactly_the_protocol_our_routes_parse(localpod_config: ConfigFactory) -> None:
    import runpod

    config = localpod_config(record_worker_wire=True, ping_interval_ms=1000)
    async with running_localpod(config) as pod, pod_client(pod) as client:
        (worker,) = pod.state.workers.all()
        base = f"/v2/{pod.endpoint_id}"
        job_input = {"chunks": ["a", {"b": 1}], "progress": {"pct": 50}, "sleep_s": 2.5}
        job_id = (await client.post("/run", json={"input": job_input})).json()["id"]
        final = (await client.get(f"/status-sync/{job_id}?wait=30000")).json()
        assert (final["status"], final["output"]) == ("COMPLETED", ["a", {"b": 1}])
        wire = pod.wire_log
        routes = [r for r in build_localpod_app(pod.state).routes if isinstance(r, Route)]

    user_agent = f"RunPod-Python-SDK/{runpod.__version__} "
    for record in wire.records:
        assert record.headers["authorization"] == worker.secret  # raw, no "Bearer"
        # The job loop is aiohttp with the SDK's user agent; the heartbeat process is plain requests.
        expected_agent = "python-requests/" if record.route == "ping" else user_agent
        assert record.headers["user-agent"].startswith(expected_agent)
        assert len(matching_routes(routes, record)) == 1, record.path

    take = wire.of("job-take")[0]
    assert (take.method, take.path) == ("GET", f"{base}/job-take/{worker.id}")
    assert take.query == (("gpu", "LOCAL"), ("job_in_progress", "0"))
    assert take.headers["content-type"] == "application/json"

    streams = wire.of("job-stream")
    assert [(r.method, r.path) for r in streams] == [("POST", f"{base}/job-stream/{worker.id}/{job_id}")] * 2
    assert {r.query for r in streams} == {(("gpu", "LOCAL"), ("isStream", "false"))}
    assert [json.loads(r.body) for r in streams] == [{"output": "a"}, {"output": {"b": 1}}]
    assert {r.headers["content-type"] for r in streams} == {"application/x-www-form-urlencoded"}
    assert {r.headers["x-request-id"] for r in streams} == {job_id}

    dones = {json.dumps(json.loads(r.body)): r for r in wire.of("job-done")}
    progress = dones[json.dumps({"status": "IN_PROGRESS", "output": {"pct": 50}})]
    assert progress.query == (("gpu", "LOCAL"), ("isStream", "false"))
    result = dones[json.dumps({"output": ["a", {"b": 1}]})]
    assert result.path == f"{base}/job-done/{worker.id}/{job_id}"
    assert result.query == (("gpu", "LOCAL"), ("isStream", "true"))
    assert result.headers["content-type"] == "application/x-www-form-urlencoded"

    pings = wire.of("ping")
    assert {r.path for r in pings} == {f"{base}/ping/{worker.id}"}
    assert all(dict(r.query)["runpod_version"] == runpod.__version__ for r in pings)
    assert any(dict(r.query).get("job_id") == job_id for r in pings)

    stop = wire.of("job-stop")[0]
    assert (stop.method, stop.path, stop.query) == ("GET", f"{base}/job-stop/{worker.id}", (("gpu", "LOCAL"),))


async def test_an_sdk_worker_with_spare_slots_uses_job_take_batch(localpod_config: ConfigFactory) -> None:
    config = localpod_config(record_worker_wire=True, worker_env={"ECHO_CONCURRENCY": "4"})
    async with running_localpod(config) as pod, pod_client(pod) as client:
        (worker,) = pod.state.workers.all()
        job_id = (await client.post("/run", json={"input": {"chunks": ["x"], "sleep_s": 1.5}})).json()["id"]
        assert (await client.get(f"/status-sync/{job_id}?wait=20000")).json()["status"] == "COMPLETED"
        takes = pod.wire_log.of("job-take-batch")
    assert takes[0].path == f"/v2/{pod.endpoint_id}/job-take-batch/{worker.id}"
    assert takes[0].query == (("gpu", "LOCAL"), ("batch_size", "4"), ("job_in_progress", "0"))
    # With a job running the next take says so and asks for fewer jobs. (SDK 1.12.0 asks for 2, not
    # 3: a just-taken job counts both in its local queue and as in progress.)
    later = [dict(t.query) for t in takes[1:]]
    assert any(q["job_in_progress"] == "1" and 1 <= int(q["batch_size"]) < 4 for q in later)
