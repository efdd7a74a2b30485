"""RunPod's OpenAI route: `{"openai_route": ..., "openai_input": {...}}` jobs.

Streaming yields strings of SSE frames (`"data: {json}\\n\\n"`, the last one `"data: [DONE]\\n\\n"`),
batched like chat chunks since each yield is one post to RunPod; RunPod concatenates them
into the `text/event-stream` its `/openai/v1/chat/completions` returns. Non-streaming yields
one dict, the OpenAI response body. `/v1/models` yields the model list.

The first streamed frame is OpenAI's usual opening chunk (`delta: {"role": "assistant",
"content": ""}`) sent at once, before the model's first token, carrying the RunPod job id as
`runpod_job_id`: RunPod's OpenAI route gives its caller no job id, and this one is what lets
the gateway `/cancel` the job when it hangs up (a lost race, a caller gone). The model request
starts before that frame is posted, so the post overlaps the prompt's prefill.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from pete_mcp.contract import OpenAIJob

from .backends.base import ChatRequest, ModelBackend
from .config import WorkerConfig
from .errors import BadInput
from .streaming import ReplySummary, batched_reply
from .tracing import end_span, start_job_span
from .validation import describe_validation_error

__all__ = ["run_openai_job"]


class _ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class _ChatBody(BaseModel):
    """The OpenAI chat-completions fields the worker reads; the rest pass through as `extra`."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    messages: list[_ChatMessage] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: Literal[1] | None = None
    stream_options: dict[str, Any] | None = None
    num_ctx: int | None = Field(default=None, ge=1, validation_alias=AliasChoices("num_ctx", "context_window"))
    metadata: dict[str, Any] | None = None  # OpenAI's; read for `traceparent`, never sent to the model server


async def run_openai_job(
    job: OpenAIJob, backend: ModelBackend, config: WorkerConfig, *, job_id: str | None = None
) -> AsyncGenerator[Any, None]:
    """Yield SSE strings (streaming), or one response dict. `job_id` goes into the opening frame.

    Raises:
        BadInput: an unsupported route or an invalid chat-completions body.
    """
    if job.openai_route == "/v1/models":
        models = await backend.list_models()
        yield {
            "object": "list",
            "data": [{"id": m.name, "object": "model", "created": 0, "owned_by": "pete"} for m in models],
        }
        return
    if job.openai_route != "/v1/chat/completions":
        raise BadInput(f"This worker serves /v1/chat/completions and /v1/models, not {job.openai_route}.")
    body = _parse_body(job.openai_input)
    request = _chat_request(body)
    span = start_job_span(  # the gateway's traceparent comes in the body's `metadata`
        f"worker chat {body.model}",
        _traceparent(body),
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": body.model, "pete.worker.id": config.worker_id or ""},
    )
    reply = batched_reply(backend, request, chunk_chars=config.chunk_chars, max_delay_s=config.chunk_max_delay_s)
    try:
        async with aclosing(reply):
            if body.stream:
                include_usage = bool((body.stream_options or {}).get("include_usage"))
                async for frames in _sse_frames(reply, body.model, include_usage=include_usage, job_id=job_id):
                    yield frames
                return
            async for item in reply:
                if isinstance(item, ReplySummary):
                    yield _completion(item, body.model)
    finally:
        end_span(span, **{"pete.runpod.route": "openai"})


def _traceparent(body: _ChatBody) -> str | None:
    value = (body.metadata or {}).get("traceparent")
    return value if isinstance(value, str) else None


def _parse_body(raw: dict[str, Any] | None) -> _ChatBody:
    if raw is None:
        raise BadInput("An OpenAI-route chat job needs `openai_input` (the chat-completions body).")
    try:
        return _ChatBody.model_validate(raw)
    except ValidationError as err:
        raise BadInput(f"Invalid chat-completions body: {describe_validation_error(err)}") from err


def _chat_request(body: _ChatBody) -> ChatRequest:
    known = set(_ChatBody.model_fields)
    extra = {key: value for key, value in (body.model_extra or {}).items() if key not in known}
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    return ChatRequest(
        model=body.model,
        messages=[_plain_message(message) for message in body.messages],
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        seed=body.seed,
        stop=stop,
        num_ctx=body.num_ctx,
        extra=extra,
    )


def _plain_message(message: _ChatMessage) -> dict[str, Any]:
    """A message with string content: text parts are joined; other parts are refused."""
    plain = message.model_dump(exclude_none=True)
    plain["role"] = "system" if message.role == "developer" else message.role
    if isinstance(message.content, list):
        texts = []
        for part in message.content:
            if part.get("type") != "text":
                raise BadInput(f"This worker takes text only; a message has a {part.get('type')!r} part.")
            texts.append(str(part.get("text", "")))
        plain["content"] = "".join(texts)
    plain.setdefault("content", "")
    return plain


async def _sse_frames(
    reply: AsyncIterator[str | ReplySummary], model: str, *, include_usage: bool, job_id: str | None = None
) -> AsyncIterator[str]:
    """The reply as SSE frame strings: the opening frame at once, then one frame per piece."""
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None, **extra: Any) -> str:
        return _frame(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }
        )

    opening = {"runpod_job_id": job_id} if job_id else {}
    items = _started_early(reply, chunk({"role": "assistant", "content": ""}, None, **opening))
    async with aclosing(items):
        async for item in items:
            if isinstance(item, _Opening):
                yield item.frame
            elif isinstance(item, str):
                yield chunk({"content": item}, None)
            else:
                frames = chunk({}, _finish_reason(item.finish_reason))
                if include_usage:
                    frames += _frame(
                        {
                            "id": completion_id,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": model,
                            "choices": [],
                            "usage": _usage(item),
                        }
                    )
                yield frames + "data: [DONE]\n\n"


@dataclass(frozen=True)
class _Opening:
    frame: str


async def _started_early(
    reply: AsyncIterator[str | ReplySummary], opening: str
) -> AsyncGenerator[str | ReplySummary | _Opening, None]:
    """`opening` first, then the reply's items; the reply's first step starts before `opening`
    is handed out (the SDK posts each yield before asking for the next one)."""

    async def first_step() -> str | ReplySummary:
        return await anext(reply)

    first = asyncio.ensure_future(first_step())
    try:
        yield _Opening(opening)
        item = await first
    finally:
        if not first.done():
            first.cancel()
            await asyncio.wait({first})
    yield item
    async for item in reply:
        yield item


def _completion(summary: ReplySummary, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": summary.text},
                "finish_reason": _finish_reason(summary.finish_reason),
            }
        ],
        "usage": _usage(summary),
    }


def _usage(summary: ReplySummary) -> dict[str, int]:
    return {
        "prompt_tokens": summary.usage.prompt_tokens,
        "completion_tokens": summary.usage.completion_tokens,
        "total_tokens": summary.usage.total_tokens,
    }


def _finish_reason(reason: str) -> str:
    return "length" if reason == "length" else "stop"


def _frame(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}\n\n"
