"""The job contract between the gateway and the RunPod worker (`gpu_handler`).

One module, imported by both sides and tested against the same JSON fixtures
(`tests/fixtures/jobs/`), so the two ends cannot drift apart.

A RunPod job's `input` is one of:

- `ChatJob`      Pete's own chat shape (`{"kind": "chat", ...}`; `kind` may be omitted), which is
                 also what the OpenAI chat body, worker-vLLM's `sampling_params` input and a bare
                 `prompt` become (`normalize_job_input`);
- `OpenAIJob`    what RunPod's `/openai/v1/*` route delivers (`openai_route` + `openai_input`);
- `ControlJob`   `{"kind": "control", "action": "warmup" | "models"}`.

A chat job streams `StreamChunk`s (sentence-sized text pieces) and ends with one `ChatResult`;
a failure is a `JobError` with a typed `code`. Everything here is plain pydantic so it
travels as JSON through RunPod unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

__all__ = [
    "ChatJob",
    "ChatOptions",
    "ChatResult",
    "ControlJob",
    "ControlResult",
    "ErrorCode",
    "FinishReason",
    "JobError",
    "JobInput",
    "Message",
    "ModelState",
    "NormalizedInput",
    "OpenAIJob",
    "StreamChunk",
    "Timings",
    "Usage",
    "normalize_job_input",
    "parse_job_input",
]


FinishReason = Literal["stop", "length", "cancelled", "error"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(BaseModel):
    """One chat message. Extra keys (tool_calls, name, ...) pass through untouched."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""


class ChatOptions(_Wire):
    """Sampling options, and the model's context window (`num_ctx`, also read as `context_window`).

    `num_ctx` tells an Ollama worker how large a window to load the model with (Ollama's own
    default is smaller than most models'); OpenAI-compatible servers fix it at start and ignore it.
    """

    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=32768)] | None = None
    seed: int | None = None
    stop: list[str] | None = None
    top_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    num_ctx: Annotated[int, Field(ge=1, le=1_048_576)] | None = Field(
        default=None, validation_alias=AliasChoices("num_ctx", "context_window")
    )


class ChatJob(_Wire):
    """Pete's chat job: one turn of a conversation for one model."""

    kind: Literal["chat"] = "chat"
    model: Annotated[str, Field(min_length=1, max_length=200)]
    messages: Annotated[list[Message], Field(min_length=1)]
    options: ChatOptions = ChatOptions()
    stream: bool = True
    request_id: str | None = None
    trace: Annotated[str | None, Field(default=None, max_length=128)] = None
    """The gateway's W3C `traceparent`, so the worker's span joins the turn's trace (optional)."""


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
    finish_reason: FinishReason = "stop"
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

# Sampling keys a chat input may carry at its top level, in `sampling_params` or in `options`,
# with the ChatOptions field each becomes. Anything else there is dropped (and reported).
_SAMPLING_KEYS = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "seed": "seed",
    "stop": "stop",
    "top_p": "top_p",
    "num_ctx": "num_ctx",
    "context_window": "num_ctx",
}


class NormalizedInput(NamedTuple):
    """A job input in Pete's own shape, and the keys that were dropped on the way (`options.top_k`)."""

    data: Any
    ignored: tuple[str, ...]


class _LooseChat(BaseModel):
    """Every chat shape the worker reads, checked for types before it is put in Pete's shape."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["chat"] = "chat"
    model: Annotated[str, Field(min_length=1)] | None = None
    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    options: dict[str, Any] = {}
    sampling_params: dict[str, Any] = {}
    stream: bool = True
    request_id: str | None = None
    trace: str | None = None

    @model_validator(mode="after")
    def _messages_or_prompt(self) -> _LooseChat:
        if self.messages is not None and self.prompt is not None:
            raise ValueError("give `messages` or `prompt`, not both")
        return self


def normalize_job_input(raw: Any, *, default_model: str | None = None) -> NormalizedInput:
    """Put any chat input the worker accepts into Pete's `ChatJob` shape; other inputs pass unchanged.

    Accepted: Pete's job; the OpenAI chat body (`model`, `messages`, `max_tokens`, ... at the top
    level); worker-vLLM's (`messages` or `prompt`, with `sampling_params`); a bare `prompt` (one
    user message). Sampling keys move into `options`, where `options` wins over
    `sampling_params`, which wins over the top level. A missing `model` becomes `default_model`
    (the worker's first preloaded model). Keys nothing reads are dropped and listed in `ignored`,
    so the caller can warn instead of failing a job RunPod's console examples would send.

    Raises:
        pydantic.ValidationError: a chat field has the wrong type, or both `messages` and `prompt`.
    """
    if not isinstance(raw, Mapping) or "openai_route" in raw or raw.get("kind") == "control":
        return NormalizedInput(raw, ())
    loose = _LooseChat.model_validate(raw)
    ignored: list[str] = []
    options: dict[str, Any] = {}
    top_level = dict(loose.model_extra or {})
    for source, where in ((top_level, ""), (loose.sampling_params, "sampling_params."), (loose.options, "options.")):
        for key, value in source.items():
            if key in _SAMPLING_KEYS:
                options[_SAMPLING_KEYS[key]] = [value] if key == "stop" and isinstance(value, str) else value
            else:
                ignored.append(where + key)
    data: dict[str, Any] = {"kind": "chat", "options": options, "stream": loose.stream}
    model = loose.model or default_model
    if model is not None:
        data["model"] = model
    if loose.messages is not None:
        data["messages"] = [_plain_message(message) for message in loose.messages]
    elif loose.prompt is not None:
        data["messages"] = [{"role": "user", "content": loose.prompt}]
    if loose.request_id is not None:
        data["request_id"] = loose.request_id
    if loose.trace is not None:
        data["trace"] = loose.trace  # the gateway's traceparent: the worker's span joins the turn's trace
    return NormalizedInput(data, tuple(ignored))


def parse_job_input(raw: Any, *, default_model: str | None = None) -> JobInput:
    """Validate a RunPod job's `input`, choosing the shape by its keys (see `normalize_job_input`).

    Keys nothing reads are dropped silently here; call `normalize_job_input` first to report them.

    Raises:
        pydantic.ValidationError: the input matches no job shape.
    """
    data = normalize_job_input(raw, default_model=default_model).data
    if isinstance(data, dict):
        if "openai_route" in data:
            return OpenAIJob.model_validate(data)
        if data.get("kind") == "control":
            return ControlJob.model_validate(data)
        return ChatJob.model_validate(data)
    return _JOB_INPUT.validate_python(data)


def _plain_message(message: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's spellings in Pete's: `developer` is a system message; text parts join into one string."""
    plain = dict(message)
    if plain.get("role") == "developer":
        plain["role"] = "system"
    content = plain.get("content")
    if isinstance(content, list) and all(isinstance(part, dict) and part.get("type") == "text" for part in content):
        plain["content"] = "".join(str(part.get("text", "")) for part in content)
    return plain
