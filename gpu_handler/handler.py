"""The RunPod handler: one async generator for every job shape, run by the unmodified `runpod` SDK loop.

    handler = JobHandler(backend, config)
    runpod.serverless.start({"handler": handler.handle, "return_aggregate_stream": True,
                             "concurrency_modifier": handler.concurrency})

Chat input is read liberally (`normalize_job_input`): Pete's job, the OpenAI chat body,
worker-vLLM's `sampling_params` shape or a bare `prompt`; a missing model is the worker's first
preloaded one, and keys nothing reads are logged as a warning rather than failing the job.

Failures are yielded as `{"error": "<JobError JSON>"}`: the SDK stops the stream there and
posts the job as FAILED with that string, which the gateway decodes into a typed error.
Cancellation (RunPod's job-stop) arrives as `CancelledError` at an `await`; the model request
is aborted on the way out and the `CancelledError` propagates, so nothing late is posted.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from pydantic import ValidationError

from pete_mcp.contract import (
    ChatJob,
    ControlJob,
    ErrorCode,
    JobError,
    JobInput,
    normalize_job_input,
    parse_job_input,
)

from .backends.base import ModelBackend
from .chat import run_chat_job
from .config import WorkerConfig
from .control import run_control_job
from .errors import BadInput, WorkerError
from .openai_route import run_openai_job
from .validation import describe_validation_error

__all__ = ["JobHandler", "job_error"]

logger = logging.getLogger(__name__)

# The smallest chat input every worker reads; bad_input messages show it.
INPUT_EXAMPLE = '{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 64}'


class JobHandler:
    """Routes a RunPod job to the chat, OpenAI-route or control runner and types its failures."""

    def __init__(self, backend: ModelBackend, config: WorkerConfig) -> None:
        self.backend = backend
        self.config = config

    async def handle(self, job: dict[str, Any]) -> AsyncGenerator[Any, None]:
        """The SDK's handler: yields chunks / SSE strings / one result, or one `{"error": ...}`."""
        try:
            parsed = _parse(job.get("input"), default_model=self.config.default_model, job_id=job.get("id"))
            job_id = job.get("id")
            async with aclosing(self._run(parsed, job_id=job_id if isinstance(job_id, str) else None)) as outputs:
                async for output in outputs:
                    yield output
        except WorkerError as err:
            logger.warning("job %s failed: %s", job.get("id"), err)
            yield job_error(err)
        except Exception:
            logger.exception("job %s failed unexpectedly", job.get("id"))
            yield job_error(None)

    def concurrency(self, current: int) -> int:
        """The SDK's `concurrency_modifier`: jobs this worker runs at once, from configuration."""
        return self.config.concurrency

    def _run(self, parsed: JobInput, *, job_id: str | None) -> AsyncGenerator[Any, None]:
        if isinstance(parsed, ChatJob):
            return run_chat_job(parsed, self.backend, self.config)
        if isinstance(parsed, ControlJob):
            return run_control_job(parsed, self.backend, self.config)
        return run_openai_job(parsed, self.backend, self.config, job_id=job_id)


def job_error(err: WorkerError | None) -> dict[str, str]:
    """`{"error": JobError JSON}` for a WorkerError (None → a generic internal error)."""
    if err is None:
        error = JobError(code=ErrorCode.INTERNAL, message="The worker failed unexpectedly; its log has the details.")
    else:
        error = JobError(code=err.code, message=str(err))
    return {"error": error.model_dump_json()}


def _parse(raw: Any, *, default_model: str | None, job_id: Any) -> JobInput:
    """The job's input as a contract object; keys nothing reads are logged, not fatal.

    Raises:
        BadInput: no input, or one no accepted shape reads (the message shows an example).
    """
    if raw is None:
        raise BadInput(f"The job has no `input`. Expected an input such as {INPUT_EXAMPLE}.")
    try:
        normalized = normalize_job_input(raw, default_model=default_model)
        if normalized.ignored:
            logger.warning(
                "job %s: ignored input keys this worker does not read: %s", job_id, ", ".join(normalized.ignored)
            )
        return parse_job_input(normalized.data)
    except ValidationError as err:
        raise BadInput(_unreadable(raw, err, default_model=default_model)) from err


def _unreadable(raw: Any, err: ValidationError, *, default_model: str | None) -> str:
    problems = describe_validation_error(err)
    if isinstance(raw, dict) and ("openai_route" in raw or raw.get("kind") == "control"):
        return f"The job input is not a job this worker reads: {problems}."
    if default_model is None and any(e["loc"] == ("model",) and e["type"] == "missing" for e in err.errors()):
        return (
            f"The job input names no `model` and this worker preloads none to default to ({problems}). "
            'Add `"model": "<name>"` (the `models` control job lists them) or set WORKER_PRELOAD.'
        )
    return f"The job input is not a chat job this worker reads ({problems}). Expected an input such as {INPUT_EXAMPLE}."
