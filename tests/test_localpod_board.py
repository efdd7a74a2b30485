"""The local endpoint's job board: states, queue, requeue policy, deadlines (no processes)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pete_mcp.local.localpod import Job, JobStatus, LocalPodConfig
from pete_mcp.local.localpod._board import JobBoard
from pete_mcp.local.localpod._job import JobPolicy

POLICY = JobPolicy(execution_timeout_s=600.0, ttl_s=86_400.0)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Recorder:
    stops: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    finished: list[str] = field(default_factory=list[str])

    def stop(self, worker_id: str, job_id: str) -> None:
        self.stops.append((worker_id, job_id))

    def finish(self, job: Job) -> None:
        self.finished.append(job.status.value)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def board(clock: Clock, recorder: Recorder) -> JobBoard:
    config = LocalPodConfig(max_requeues=1, async_retention_s=1800.0, sync_retention_s=60.0)
    return JobBoard(config, clock=clock, on_stop=recorder.stop, on_finished=recorder.finish)


def test_take_hands_out_the_oldest_jobs_and_measures_their_queue_delay(board: JobBoard, clock: Clock) -> None:
    first = board.submit({"n": 1}, policy=POLICY, sync=False)
    second = board.submit({"n": 2}, policy=POLICY, sync=True)
    clock.now += 0.25
    assert board.take("w1", limit=1) == [first]
    assert first.status is JobStatus.IN_PROGRESS
    assert first.status_body() == {"id": first.id, "status": "IN_PROGRESS", "delayTime": 250, "workerId": "w1"}
    assert second.id.startswith("sync-") and not first.id.startswith("sync-")
    assert board.counts() == {"completed": 0, "failed": 0, "inProgress": 1, "inQueue": 1, "retried": 0}


def test_a_stalled_job_is_not_handed_out_before_its_time(board: JobBoard, clock: Clock) -> None:
    stalled = board.submit({}, policy=POLICY, sync=False, stall_s=2.0)
    assert board.take("w1", limit=5) == []
    assert board.next_ready_at() == pytest.approx(clock.now + 2.0)
    clock.now += 2.0
    assert board.take("w1", limit=5) == [stalled]


def test_completed_job_object_has_times_worker_and_output(board: JobBoard, clock: Clock) -> None:
    job = board.submit({}, policy=POLICY, sync=False)
    board.take("w1", limit=1)
    clock.now += 1.5
    board.finish_reported(job, JobStatus.COMPLETED, output={"text": "hi"})
    assert job.status_body() == {
        "id": job.id,
        "status": "COMPLETED",
        "delayTime": 0,
        "executionTime": 1500,
        "workerId": "w1",
        "output": {"text": "hi"},
    }


def test_a_dead_workers_job_is_requeued_once_then_fails(board: JobBoard, recorder: Recorder) -> None:
    job = board.submit({"x": 1}, policy=POLICY, sync=False)
    board.take("w1", limit=1)
    board.add_chunk(job, "partial")
    board.worker_lost("w1", "was killed")
    assert job.status is JobStatus.IN_QUEUE
    assert (job.retries, job.chunks, job.worker_id) == (1, [], None)
    assert board.counts()["retried"] == 1
    board.take("w2", limit=1)
    board.worker_lost("w2", "exited with code -9")
    assert job.status is JobStatus.FAILED
    assert job.error is not None and "w2 exited with code -9" in job.error
    assert job.status_body()["retries"] == 1
    assert board.counts() == {"completed": 0, "failed": 1, "inProgress": 0, "inQueue": 0, "retried": 1}
    assert recorder.stops == []  # a dead worker is not told to stop anything


def test_cancelling_a_running_job_tells_its_worker_and_late_results_are_ignored(
    board: JobBoard, recorder: Recorder
) -> None:
    job = board.submit({}, policy=POLICY, sync=False)
    board.take("w1", limit=1)
    board.cancel(job)
    assert job.status is JobStatus.CANCELLED
    assert recorder.stops == [("w1", job.id)]
    board.finish_reported(job, JobStatus.COMPLETED, output="late")
    assert job.status is JobStatus.CANCELLED and job.output is None
    assert board.counts()["completed"] == 0


def test_cancelling_a_finished_job_keeps_its_status(board: JobBoard) -> None:
    job = board.submit({}, policy=POLICY, sync=False)
    board.take("w1", limit=1)
    board.finish_reported(job, JobStatus.COMPLETED, output=1)
    board.cancel(job)
    assert job.status is JobStatus.COMPLETED


def test_retry_requeues_only_failed_or_timed_out_jobs_with_the_same_id(board: JobBoard) -> None:
    done = board.submit({}, policy=POLICY, sync=False)
    board.take("w1", limit=1)
    board.finish_reported(done, JobStatus.COMPLETED, output=1)
    assert board.retry(done) is False

    failed = board.submit({"again": True}, policy=POLICY, sync=False)
    board.take("w1", limit=1)
    board.finish_reported(failed, JobStatus.FAILED, output=None, has_output=False, error="boom")
    assert board.retry(failed) is True
    assert failed.status_body() == {"id": failed.id, "status": "IN_QUEUE", "retries": 1}
    assert board.take("w1", limit=1) == [failed]
    assert failed.input == {"again": True}


def test_execution_timeout_times_the_job_out_and_stops_it_on_its_worker(
    board: JobBoard, clock: Clock, recorder: Recorder
) -> None:
    job = board.submit({}, policy=JobPolicy(execution_timeout_s=2.0, ttl_s=60.0), sync=False)
    clock.now += 10.0  # time in the queue does not count
    board.take("w1", limit=1)
    clock.now += 1.9
    board.sweep()
    assert job.status is JobStatus.IN_PROGRESS
    clock.now += 0.2
    board.sweep()
    assert job.status is JobStatus.TIMED_OUT
    assert job.error == "Execution timeout of 2000 ms exceeded."
    assert recorder.stops == [("w1", job.id)]
    assert board.counts()["failed"] == 1


def test_ttl_deletes_a_job_even_while_it_runs(board: JobBoard, clock: Clock, recorder: Recorder) -> None:
    job = board.submit({}, policy=JobPolicy(execution_timeout_s=600.0, ttl_s=5.0), sync=False)
    board.take("w1", limit=1)
    clock.now += 5.0
    board.sweep()
    assert board.get(job.id) is None and job.deleted
    assert recorder.stops == [("w1", job.id)]
    assert board.counts()["inProgress"] == 0


def test_results_are_kept_30_minutes_for_run_and_1_minute_for_runsync(board: JobBoard, clock: Clock) -> None:
    async_job = board.submit({}, policy=POLICY, sync=False)
    sync_job = board.submit({}, policy=POLICY, sync=True)
    for job in board.take("w1", limit=2):
        board.finish_reported(job, JobStatus.COMPLETED, output=None)
    clock.now += 59.0
    assert board.get(sync_job.id) is sync_job
    clock.now += 1.0
    assert board.get(sync_job.id) is None
    clock.now += 1800.0 - 60.0 - 0.1
    assert board.get(async_job.id) is async_job
    clock.now += 0.1
    board.sweep()
    assert board.get(async_job.id) is None


def test_the_stream_cursor_returns_each_chunk_once(board: JobBoard) -> None:
    job = board.submit({}, policy=POLICY, sync=False)
    board.take("w1", limit=1)
    board.add_chunk(job, "a")
    board.add_chunk(job, "b")
    assert board.read_stream(job) == ["a", "b"]
    assert board.read_stream(job) == []
    board.add_chunk(job, "c")
    assert board.read_stream(job) == ["c"]


def test_purge_queue_cancels_queued_jobs_only(board: JobBoard, recorder: Recorder) -> None:
    running = board.submit({}, policy=POLICY, sync=False)
    board.take("w1", limit=1)
    queued = [board.submit({}, policy=POLICY, sync=False) for _ in range(3)]
    assert board.purge_queue() == 3
    assert all(job.status is JobStatus.CANCELLED for job in queued)
    assert running.status is JobStatus.IN_PROGRESS
    assert board.counts()["inQueue"] == 0
    assert recorder.stops == []


def test_progress_updates_show_as_output_while_in_progress(board: JobBoard) -> None:
    job = board.submit({}, policy=POLICY, sync=False)
    board.take("w1", limit=1)
    board.record_progress(job, {"step": 2})
    assert job.status_body()["output"] == {"step": 2}
    assert job.status is JobStatus.IN_PROGRESS
