"""One chat turn streamed through RunPod as events, by either streaming path.

- `/run` + the `/stream` loop: the worker yields the job contract's `StreamChunk` dicts and
  then one `ChatResult` dict; the job id is known as soon as `/run` answers.
- the OpenAI route: real SSE pushed as the worker produces it (lowest time to first token);
  the result is assembled here from the chunks, with timings measured by this client. RunPod
  itself gives no job id on this route; Pete's worker puts it in its opening frame
  (`runpod_job_id`, sent before the model's first token), so it is known once a worker
  started the job.

Both yield `JobStarted` once the job id is known, then `TextDelta`s and one `ChatResult`, and
both stop the RunPod job when the consumer leaves before the end: `/cancel` with the job id
(on the OpenAI route after hanging up, which alone stops it on the local endpoint but is not
documented to on RunPod).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import anyio
import anyio.lowlevel
from pydantic import ValidationError

from pete_mcp.contract import ChatJob, ChatResult, FinishReason, Timings
from pete_mcp.core import JobFailed, JobStarted, ProviderError, StreamedReply, TextDelta, chat_body

from ._http import PROVIDER
from ._wire import JobRef, JobStatus, decode_worker_error

__all__ = ["ChatEvent", "ChatStream", "SeenStatus", "openai_events", "runpod_stream_events"]

logger = logging.getLogger("pete_mcp.runpod.client")


class JobClient(Protocol):
    """The parts of `RunPodClient` a chat stream drives; a protocol, so this module need not import it."""

    async def run(self, input: ChatJob) -> JobRef: ...

    def _stream_outputs(self, job_id: str, wait_ms: int | None, seen: SeenStatus) -> AsyncIterator[Any]: ...

    async def _cancel_quietly(self, job_id: str) -> None: ...

    def openai_chat_stream(self, body: Mapping[str, Any]) -> AsyncGenerator[dict[str, Any], None]: ...


ChatEvent = JobStarted | TextDelta | ChatResult
# A server's finish reason as the contract names it; anything else reads as "stop".
_FINISH_REASONS: dict[str, FinishReason] = {r: r for r in ("stop", "length", "cancelled", "error")}


@dataclass
class SeenStatus:
    """The last status a stream loop saw, so its owner knows whether the job still needs cancelling."""

    status: JobStatus | None = None

    @property
    def terminal(self) -> bool:
        return self.status is not None and self.status.is_terminal


class ChatStream:
    """An async iterator of `ChatEvent`s with the RunPod job id on `.job_id` once known.

    Use `async with`: leaving the block before the end (break, error, cancellation) closes
    the stream, which cancels the RunPod job.
    """

    def __init__(self) -> None:
        self.job_id: str | None = None
        self.detached = False
        self._events: AsyncGenerator[ChatEvent, None] | None = None

    def detach(self) -> str | None:
        """Let the job run on when this stream is closed (e.g. an MCP call whose time budget ran
        out returns the job id for a later `status`). Returns the job id, if known yet."""
        self.detached = True
        return self.job_id

    def attach(self, events: AsyncGenerator[ChatEvent, None]) -> None:
        self._events = events

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> ChatEvent:
        assert self._events is not None, "ChatStream used before attach()"
        return await self._events.__anext__()

    async def aclose(self) -> None:
        if self._events is not None:
            await self._events.aclose()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def result(self) -> ChatResult:
        """Consume the rest of the stream and return its final `ChatResult`."""
        async with self:
            async for event in self:
                if isinstance(event, ChatResult):
                    return event
        raise ProviderError("the RunPod chat stream ended without a result.", provider=PROVIDER)


async def runpod_stream_events(client: JobClient, chat: ChatJob, stream: ChatStream) -> AsyncGenerator[ChatEvent, None]:
    """`/run` the chat job, then relay its `/stream` chunks as events."""
    ref = await _run_shielded(client, chat)
    stream.job_id = ref.id
    seen = SeenStatus(ref.status)
    try:
        await anyio.lowlevel.checkpoint()  # deliver a cancellation that arrived during /run
        yield JobStarted(ref.id)
        parts: list[str] = []
        result: ChatResult | None = None
        next_index = 0
        async for output in client._stream_outputs(ref.id, None, seen):
            next_index = _check_not_restarted(output, next_index, ref.id, spoke=bool(parts))
            event = _event_from_worker_output(output, ref.id)
            if isinstance(event, TextDelta):
                if event.text:
                    parts.append(event.text)
                    yield event
            else:
                result = event
        if result is None:
            logger.warning("RunPod job %s completed without a ChatResult; assembling one", ref.id)
            result = ChatResult(text="".join(parts), model=chat.model)
        yield result
    finally:
        if not seen.terminal and not stream.detached:
            await client._cancel_quietly(ref.id)


async def _run_shielded(client: JobClient, chat: ChatJob) -> JobRef:
    """`/run`, shielded: a cancellation arriving meanwhile must still leave us the id to cancel."""
    with anyio.CancelScope(shield=True):
        return await client.run(chat)
    raise AssertionError("unreachable: a shielded scope does not swallow the result")


async def openai_events(client: JobClient, chat: ChatJob, stream: ChatStream) -> AsyncGenerator[ChatEvent, None]:
    """Stream the chat job through the endpoint's OpenAI route and turn the chunks into events.

    A chunk carrying `runpod_job_id` (Pete's worker sends it first) sets `stream.job_id` and
    yields `JobStarted`; leaving early then hangs up and `/cancel`s that job. `detach()` cannot
    keep an OpenAI-route job alive: hanging up is how the endpoint learns the caller left.
    """
    started = anyio.current_time()
    ttft: float | None = None
    reply = StreamedReply()
    model = chat.model
    body = chat_body(chat.model, chat.messages, chat.options, stream=True, num_ctx=True, traceparent=chat.trace)
    chunks = client.openai_chat_stream(body)
    # Closing `chunks` closes the HTTP stream: hanging up is how this route stops its job.
    run_id: object = None
    finished = False
    try:
        async with aclosing(chunks):
            async for chunk in chunks:
                if reply.parts and chunk.get("id") not in (None, run_id):
                    raise _restarted("the endpoint's OpenAI stream")
                run_id = chunk.get("id", run_id)
                job_id = chunk.get("runpod_job_id")
                if stream.job_id is None and isinstance(job_id, str) and job_id:
                    stream.job_id = job_id
                    yield JobStarted(job_id)
                model = str(chunk.get("model") or model)
                if text := reply.take(chunk):
                    if ttft is None:
                        ttft = anyio.current_time() - started
                    yield TextDelta(text)
        finished = True
    finally:
        if stream.job_id is not None and not finished:
            await client._cancel_quietly(stream.job_id)
    yield ChatResult(
        text=reply.text,
        finish_reason=_FINISH_REASONS.get(reply.finish, "stop"),
        usage=reply.usage,
        timings=Timings(ttft_s=ttft, total_s=anyio.current_time() - started),
        model=model,
    )


def _restarted(where: str) -> ProviderError:
    # RunPod re-runs a job whose worker died; its chunks start over. Text already relayed must
    # not be followed by the re-run's (the caller would hear the start twice): fail the reply.
    return ProviderError(
        f"RunPod restarted the job on another worker mid-reply ({where}); the reply is incomplete.",
        provider=PROVIDER,
    )


def _check_not_restarted(output: Any, next_index: int, job_id: str, *, spoke: bool) -> int:
    """The chunk index the next `/stream` chunk should carry; raises if the job started over."""
    if not (isinstance(output, dict) and output.get("type") == "chunk" and isinstance(output.get("index"), int)):
        return next_index
    if output["index"] < next_index and spoke:
        raise _restarted(f"job {job_id}")
    return output["index"] + 1


def _event_from_worker_output(output: Any, job_id: str) -> TextDelta | ChatResult:
    """One `/stream` element of a Pete chat job → an event (or the job's typed failure)."""
    if isinstance(output, str):
        return TextDelta(output)
    if not isinstance(output, dict):
        raise ProviderError(f"RunPod job {job_id} streamed an unexpected {type(output).__name__}.", provider=PROVIDER)
    kind = output.get("type")
    if kind == "chunk":
        return TextDelta(str(output.get("text") or ""))
    if kind == "result":
        try:
            return ChatResult.model_validate(output)
        except ValidationError as exc:
            raise ProviderError(
                f"RunPod job {job_id} returned a result that does not match the job contract: {exc}",
                provider=PROVIDER,
            ) from exc
    if kind == "error" or "error" in output:
        raw = output if kind == "error" else output["error"]
        raise JobFailed(
            f"RunPod job {job_id} failed: {decode_worker_error(raw).describe()}", provider=PROVIDER, job_id=job_id
        )
    raise ProviderError(f"RunPod job {job_id} streamed an unknown chunk type {kind!r}.", provider=PROVIDER)
