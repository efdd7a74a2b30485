"""The RunPod load-balancing provider: chat turns as direct HTTP to a worker, one worker per call.

Why: a queue endpoint puts a hop between the gateway and the worker (`/run`, the SDK worker's
job-take, `/stream` polls: tens of ms before the first token, more under load). A
load-balancing endpoint relays the request straight to a worker's own HTTP server. And since
each answer names its worker (`X-Runpod-Worker-Id`), the call's next turns ask for the same
worker (`WorkerAffinity`, keyed by the conversation `Core.chat` is routing), so the model
server reuses the call's prompt cache instead of prefilling the whole conversation again on a
worker that never saw it. The affinity is soft: RunPod falls back to another worker when the
pinned one is gone or full, and the next answer's header re-pins the call.

Readiness comes from the endpoint's `/ping` (200 a worker is ready, 204 one is starting),
polled only while calls are active, so the router hedges or skips a cold endpoint exactly as
for the queue provider. Leaving a stream early hangs up, which stops the worker's generation
(there is no job, so nothing to `/cancel`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing

import anyio

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import (
    CONVERSATION,
    Completion,
    PeteError,
    ProviderError,
    ProviderHealth,
    StreamedReply,
    StreamEvent,
    TextDelta,
    chat_body,
)
from pete_mcp.runpod import EndpointState, LBCall, RunPodLBClient

from ._warming import BackgroundWarming

__all__ = ["RunPodLBProvider", "WorkerAffinity"]


_FINISH_REASONS = {"stop", "length"}


class WorkerAffinity:
    """Which worker served each call last: a bounded LRU whose entries expire after `ttl_s`."""

    def __init__(self, *, ttl_s: float = 900.0, max_calls: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.max_calls = max_calls
        self._clock = clock
        self._workers: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._workers)

    def get(self, call: str | None) -> str | None:
        """The worker to ask for on this call's next turn (None: no call, never seen, or expired)."""
        if call is None:
            return None
        entry = self._workers.get(call)
        if entry is None:
            return None
        worker, seen_at = entry
        if self._clock() - seen_at > self.ttl_s:
            del self._workers[call]
            return None
        return worker

    def remember(self, call: str | None, worker: str | None) -> None:
        """Note the worker that answered this call's turn (the oldest call is forgotten when full)."""
        if call is None or not worker:
            return
        self._workers[call] = (worker, self._clock())
        self._workers.move_to_end(call)
        while len(self._workers) > self.max_calls:
            self._workers.popitem(last=False)


class RunPodLBProvider(BackgroundWarming):
    """Streams chat turns from a load-balancing endpoint's workers, keeping each call on one worker."""

    def __init__(
        self,
        client: RunPodLBClient,
        *,
        name: str = "runpod",
        affinity: WorkerAffinity | None = None,
        health_poll_s: float = 2.0,
        worker_slots: int = 1,
        warm_timeout_s: float = 300.0,
    ) -> None:
        self.name = name
        self.client = client
        self.affinity = affinity or WorkerAffinity()
        self.warm_timeout_s = warm_timeout_s
        self._watch(EndpointState(client.health, interval_s=health_poll_s, slots_per_worker=worker_slots))

    # --- chat --------------------------------------------------------------------------------
    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        call_id = CONVERSATION.get()
        call = LBCall(worker_id=self.affinity.get(call_id))
        started = time.perf_counter()
        ttft: float | None = None
        reply = StreamedReply()
        body = chat_body(model, messages, options, stream=True, num_ctx=True)  # Pete's worker reads num_ctx
        chunks = self.client.chat_stream(body, call=call)
        async with aclosing(chunks):  # leaving early hangs up: the worker stops generating
            async for chunk in chunks:
                self.affinity.remember(call_id, call.worker_id)
                if text := reply.take(chunk):
                    if ttft is None:
                        ttft = time.perf_counter() - started
                    yield TextDelta(text)
        if call.worker_id is None and not reply.parts:
            raise ProviderError(f"The load-balancing endpoint answered nothing for {model!r}.", provider=self.name)
        yield Completion(
            text=reply.text,
            provider=self.name,
            model=model,
            finish_reason=reply.finish if reply.finish in _FINISH_REASONS else "stop",
            usage=reply.usage,
            ttft_s=ttft,
            total_s=time.perf_counter() - started,
            worker_id=call.worker_id,
        )

    async def warm(self, model: str) -> float:
        """Ask for one token of `model` (starts a worker and loads the model); seconds taken."""
        started = time.perf_counter()
        with anyio.fail_after(self.warm_timeout_s):
            await self.client.chat(
                {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "temperature": 0}
            )
        return time.perf_counter() - started

    async def health(self) -> ProviderHealth:
        """The endpoint's `/ping` (a worker ready, one starting, or none: scaled to zero is healthy)."""
        try:
            health = await self.client.health()
        except PeteError as exc:
            return ProviderHealth(False, f"{self.name} /ping failed: {exc}")
        self.state.note(health)
        workers = health.workers
        figures: dict[str, int | float | str] = {
            "workers_idle": workers.idle,
            "workers_initializing": workers.initializing,
        }
        if workers.idle:
            return ProviderHealth(True, "a worker is ready (/ping 200)", figures)
        if workers.initializing:
            return ProviderHealth(True, "a worker is initializing (/ping 204)", figures)
        return ProviderHealth(True, "no worker is ready: the next request waits for a cold start", figures)

    async def cancel(self, job_id: str) -> None:
        """Nothing to cancel: a load-balanced request has no job; hanging up stops it."""
