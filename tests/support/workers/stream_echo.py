"""A streaming (async generator) runpod worker: echoes chunks, sleeps, fails, serves the OpenAI route.

Input: `{"chunks": [...], "delay_s": 0.0, "sleep_s": 0.0, "fail": "message", "progress": {...}}`.
Each chunk is yielded after `delay_s`; then it sleeps `sleep_s`; then raises if `fail` is set.
OpenAI-route inputs (`openai_route`, `openai_input`) get a word-by-word echo of the last user
message, as SSE strings when `stream` is true, else one chat.completion dict.
`ECHO_CONCURRENCY` sets the SDK's concurrency (default 1).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import runpod

from tests.support.workers._markers import mark


async def handler(job: dict[str, Any]) -> AsyncIterator[Any]:
    job_id = job["id"]
    job_input = job["input"]
    mark(job_id, "started")
    try:
        if "openai_route" in job_input:
            async for item in _openai(job_input):
                yield item
        else:
            if "progress" in job_input:
                runpod.serverless.progress_update(job, job_input["progress"])
            for chunk in job_input.get("chunks", []):
                await asyncio.sleep(float(job_input.get("delay_s", 0.0)))
                yield chunk
            await asyncio.sleep(float(job_input.get("sleep_s", 0.0)))
            if job_input.get("fail"):
                raise RuntimeError(job_input["fail"])
    except (asyncio.CancelledError, GeneratorExit):
        # A stop lands either inside the handler's own await (CancelledError) or while the SDK
        # posts the last chunk; then the SDK drops the generator, which is closed at its yield.
        mark(job_id, "cancelled")
        raise
    mark(job_id, "finished")


async def _openai(job_input: dict[str, Any]) -> AsyncIterator[Any]:
    route = job_input["openai_route"]
    if route == "/v1/models":
        yield {"object": "list", "data": [{"id": "echo", "object": "model", "owned_by": "tests"}]}
        return
    body = job_input["openai_input"]
    words = str(body["messages"][-1]["content"]).split()
    delay_s = float(body.get("delay_s", 0.0))
    created = int(time.time())
    if not body.get("stream"):
        message = {"role": "assistant", "content": " ".join(words)}
        yield {
            "id": "chatcmpl-echo",
            "object": "chat.completion",
            "created": created,
            "model": body.get("model", "echo"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }
        return
    for index, word in enumerate(words):
        await asyncio.sleep(delay_s)
        delta = {"content": word if index == 0 else f" {word}"}
        frame = {
            "id": "chatcmpl-echo",
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.get("model", "echo"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        yield f"data: {json.dumps(frame)}\n\n"
    yield "data: [DONE]\n\n"


def concurrency(_current: int) -> int:
    return int(os.environ.get("ECHO_CONCURRENCY", "1"))


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler, "concurrency_modifier": concurrency, "return_aggregate_stream": True})
