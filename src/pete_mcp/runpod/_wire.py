"""RunPod's public endpoint API on the wire: job, stream page, health, and worker errors.

Shapes follow shared/reference/runpod.md §1. Responses may carry fields we do not know
(RunPod adds some; the docs leave bodies unverified), so models ignore extras rather than
fail. Worker errors arrive in three encodings (§1.9, §2.4); `decode_worker_error` reads all
of them so a caller sees the worker's own words.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "TERMINAL_STATUSES",
    "EndpointHealth",
    "HealthJobs",
    "HealthWorkers",
    "Job",
    "JobPolicy",
    "JobRef",
    "JobStatus",
    "PurgeResult",
    "StreamBatch",
    "WorkerError",
    "decode_worker_error",
]


class JobStatus(StrEnum):
    """A job's state. `RUNNING` is listed by one docs page only (legacy); it is treated as in progress."""

    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT})


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class JobRef(_Response):
    """What `/run`, `/cancel` and `/retry` answer: an id and a status."""

    id: str
    status: JobStatus


class Job(_Response):
    """The job object of `/status` and a finished `/runsync`."""

    id: str
    status: JobStatus
    delay_time_ms: int | None = Field(default=None, validation_alias="delayTime")
    execution_time_ms: int | None = Field(default=None, validation_alias="executionTime")
    worker_id: str | None = Field(default=None, validation_alias="workerId")
    output: Any = None
    error: Any = None
    retries: int | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal


class StreamBatch(_Response):
    """One `/stream/{id}` answer: the chunks not returned before (consume-once) and the status."""

    id: str
    status: JobStatus
    delay_time_ms: int | None = Field(default=None, validation_alias="delayTime")
    stream: list[dict[str, Any]] = []

    @property
    def outputs(self) -> list[Any]:
        """The `output` of each chunk (one worker `yield` each), in order."""
        return [item.get("output") for item in self.stream]


class HealthJobs(_Response):
    completed: int = 0
    failed: int = 0
    in_progress: int = Field(default=0, validation_alias="inProgress")
    in_queue: int = Field(default=0, validation_alias="inQueue")
    retried: int = 0


class HealthWorkers(_Response):
    idle: int = 0
    initializing: int = 0
    ready: int = 0
    running: int = 0
    throttled: int = 0
    unhealthy: int = 0

    @property
    def serving(self) -> int:
        """Workers that run jobs now or soon (throttled and unhealthy ones do not)."""
        return self.idle + self.initializing + self.ready + self.running


class EndpointHealth(_Response):
    """`/health`: job counters and worker counts. Submits no job, so it never wakes a GPU."""

    jobs: HealthJobs = Field(default_factory=HealthJobs)
    workers: HealthWorkers = Field(default_factory=HealthWorkers)


class PurgeResult(_Response):
    removed: int = 0
    status: str = ""


class JobPolicy(BaseModel):
    """Per-job policy sent with `/run` and `/runsync` (milliseconds, as RunPod wants them)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    execution_timeout_ms: int | None = Field(
        default=None, validation_alias="executionTimeout", serialization_alias="executionTimeout", ge=5_000
    )
    low_priority: bool | None = Field(default=None, validation_alias="lowPriority", serialization_alias="lowPriority")
    ttl_ms: int | None = Field(default=None, validation_alias="ttl", serialization_alias="ttl", ge=10_000)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class WorkerError:
    """A failed job's error as the worker reported it, decoded."""

    message: str
    error_type: str | None = None
    code: str | None = None
    worker_id: str | None = None

    def describe(self) -> str:
        label = self.code or self.error_type
        return f"{label}: {self.message}" if label else self.message


_CLASS_REPR = re.compile(r"^<class '(?:[\w.]+\.)?(\w+)'>$")


def decode_worker_error(raw: Any) -> WorkerError:
    """Decode a FAILED job's `error` into the worker's own message.

    Handles: the SDK's JSON string for a raised handler (`error_type`, `error_message`, ...);
    Pete's `JobError` (`{"code","message"}`) as a dict, JSON, or the Python repr the SDK makes
    of a yielded `{"error": {...}}`; the SDK's `"handler: <msg> \\ntraceback: ..."` string for
    a raising generator; worker-vllm's `{"message","type"}`; anything else as text.
    """
    if raw is None:
        return WorkerError(message="the worker reported no error message")
    parsed = _parse_structured(raw) if isinstance(raw, str) else raw
    if isinstance(parsed, dict):
        return _from_mapping(parsed)
    text = str(parsed).strip()
    if text.startswith("handler: "):
        text = text.removeprefix("handler: ").split("\ntraceback:", 1)[0].strip()
    return WorkerError(message=text or "the worker reported an empty error")


def _parse_structured(text: str) -> Any:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return text
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    try:
        # The SDK turns a yielded {"error": {...}} into str(dict): a Python literal, not JSON.
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _from_mapping(data: dict[Any, Any]) -> WorkerError:
    inner = data.get("error")
    if isinstance(inner, dict | str) and not {"error_message", "message"} & data.keys():
        return decode_worker_error(inner)
    if "error_message" in data:
        error_type = str(data.get("error_type") or "")
        match = _CLASS_REPR.match(error_type)
        return WorkerError(
            message=str(data["error_message"]),
            error_type=match.group(1) if match else (error_type or None),
            worker_id=_str_or_none(data.get("worker_id")),
        )
    if "message" in data:
        return WorkerError(
            message=str(data["message"]),
            code=_str_or_none(data.get("code")),
            error_type=_str_or_none(data.get("type")) if data.get("type") != "error" else None,
        )
    return WorkerError(message=json.dumps(data, default=str)[:500])


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
