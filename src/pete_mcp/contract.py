"""The job contract between the gateway and the RunPod worker (`gpu_handler`).

One module, imported by both sides and tested against the same JSON fixtures
(`tests/fixtures/jobs/`), so the two ends cannot drift apart.

A RunPod job's `input` is one of:

- `ChatJob`      Pete's own chat shape (`{"kind": "chat", ...}`; `kind` may be omitted);
- `OpenAIJob`    what RunPod's `/openai/v1/*` route delivers (`openai_route` + `openai_input`);
- `ControlJob`   `{"kind": "control", "action": "warmup" | "models"}`.

A chat job streams `StreamChunk`s (sentence-sized text pieces) and ends with one `ChatResult`;
a failure is a `JobError` with a typed `code`. Everything here is plain pydantic so it
travels as JSON through RunPod unchanged.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "ChatJob",
    "ChatOptions",
    "ChatResult",
    "ControlJob",
    "ControlResult",
    "ErrorCode",
    "JobError",
    "JobInput",
    "Message",
    "ModelState",
    "OpenAIJob",
    "StreamChunk",
    "Timings",
    "Usage",
    "parse_job_input",
]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(BaseModel):
    """One chat message. Extra keys (tool_calls, name, ...) pass through untouched."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""


class ChatOptions(_Wire):
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=32768)] | None = None
    seed: int | None = None
    stop: list[str] | None = None


class ChatJob(_Wire):
    """Pete's chat job: one turn of a conversation for one model."""

    kind: Literal["chat"] = "chat"
    model: Annotated[str, Field(min_length=1, max_length=200)]
    messages: Annotated[list[Message], Field(min_length=1)]
    options: ChatOptions = ChatOptions()
    stream: bool = True
    request_id: str | None = None


class OpenAIJob(BaseModel):
    """The shape RunPod's OpenAI-compatible route gives a worker."""

    model_config = ConfigDict(extra="allow")

    openai_route: Literal["/v1/chat/completions", "/v1/models", "/v1/completions"]
    openai_input: dict[str, Any] | None = None


class ControlJob(_Wire):
    """Warm a model up (load it, keep it resident) or list what the worker has."""

    kind: Literal["control"] = "control"
    action: Literal["warmup", "models"]
    model: str | None = None


JobInput = ChatJob | OpenAIJob | ControlJob


class Usage(_Wire):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Timings(_Wire):
    """Seconds, measured inside the worker."""

    load_s: float | None = None
    ttft_s: float | None = None
    total_s: float = 0.0
    tokens_per_s: float | None = None


class StreamChunk(_Wire):
    """One streamed piece of an answer: what one worker `yield` carries."""

    type: Literal["chunk"] = "chunk"
    index: int
    text: str


class ChatResult(_Wire):
    """The final element of a chat job's stream (and the whole answer for `/runsync`)."""

    type: Literal["result"] = "result"
    text: str
    finish_reason: Literal["stop", "length", "cancelled", "error"] = "stop"
    usage: Usage = Usage()
    timings: Timings = Timings()
    model: str
    worker_id: str | None = None


class ModelState(_Wire):
    name: str
    loaded: bool = False
    size_bytes: int | None = None


class ControlResult(_Wire):
    type: Literal["control"] = "control"
    action: Literal["warmup", "models"]
    models: list[ModelState] = []
    load_s: float | None = None
    worker_id: str | None = None


class ErrorCode(StrEnum):
    BAD_INPUT = "bad_input"
    MODEL_NOT_FOUND = "model_not_found"
    MODEL_SERVER_UNAVAILABLE = "model_server_unavailable"
    MODEL_SERVER_ERROR = "model_server_error"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


class JobError(_Wire):
    """A failure a person can act on. Yielded as `{"error": ...}` so RunPod marks the job FAILED."""

    type: Literal["error"] = "error"
    code: ErrorCode
    message: str


_JOB_INPUT: TypeAdapter[ChatJob | OpenAIJob | ControlJob] = TypeAdapter(JobInput)


def parse_job_input(raw: Any) -> JobInput:
    """Validate a RunPod job's `input`, choosing the shape by its keys.

    Raises:
        pydantic.ValidationError: the input matches no job shape.
    """
    if isinstance(raw, dict):
        if "openai_route" in raw:
            return OpenAIJob.model_validate(raw)
        if raw.get("kind") == "control":
            return ControlJob.model_validate(raw)
        return ChatJob.model_validate(raw)
    return _JOB_INPUT.validate_python(raw)
