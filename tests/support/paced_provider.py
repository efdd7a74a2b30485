"""A `ModelProvider` with a scripted first-token delay per call, recording what was closed early.

For the router's racing logic (hedging, failover, cancellation of the loser): it implements
our provider protocol, the seam the router is built on. Real backends are tested against
real servers in their own test files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import anyio

from pete_mcp.contract import ChatOptions, Message, Usage
from pete_mcp.core.errors import PeteError
from pete_mcp.core.provider import Completion, JobStarted, ProviderHealth, StreamEvent, TextDelta


@dataclass
class PacedProvider:
    """Call n waits `delays[n]` (the last entry repeats) before its first token, or raises `errors[n]`."""

    name: str
    delays: list[float] = field(default_factory=lambda: [0.0])
    errors: list[PeteError | None] = field(default_factory=list)
    words: tuple[str, ...] = ("one", " two", " three")
    token_gap_s: float = 0.0
    calls: int = 0
    finished: list[str] = field(default_factory=list)
    closed_early: list[str] = field(default_factory=list)
    warmed: list[str] = field(default_factory=list)
    warm_started: anyio.Event = field(default_factory=anyio.Event)
    warm_error: PeteError | None = None
    warm_delay_s: float = 0.0
    options_seen: list[ChatOptions] = field(default_factory=list)

    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        index = self.calls
        self.calls += 1
        self.options_seen.append(options)
        job = f"{self.name}-{index}"
        delay = self.delays[min(index, len(self.delays) - 1)]
        error = self.errors[index] if index < len(self.errors) else None
        done = False
        try:
            yield JobStarted(job)
            await anyio.sleep(delay)
            if error is not None:
                done = True
                raise error
            words = self.words
            for word in words:
                if self.token_gap_s:
                    await anyio.sleep(self.token_gap_s)
                if word:
                    yield TextDelta(word)
            done = True
            self.finished.append(job)
            yield Completion(
                text="".join(words),
                provider=self.name,
                model=model,
                usage=Usage(prompt_tokens=1, completion_tokens=len(words)),
                job_id=job,
            )
        finally:
            if not done:
                self.closed_early.append(job)

    async def warm(self, model: str) -> float:
        self.warmed.append(model)
        self.warm_started.set()
        await anyio.sleep(self.warm_delay_s)
        if self.warm_error is not None:
            raise self.warm_error
        return self.warm_delay_s

    async def health(self) -> ProviderHealth:
        return ProviderHealth(True, f"{self.name} ok")

    async def cancel(self, job_id: str) -> None:
        self.closed_early.append(job_id)
