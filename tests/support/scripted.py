"""A scripted `ModelProvider` for testing the core's own logic (persistence, routing, errors).

It implements our provider protocol, the seam the core is built on; real backends are
tested against real servers elsewhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import anyio

from pete_mcp.contract import ChatOptions, Message, Usage
from pete_mcp.core.errors import ProviderError
from pete_mcp.core.provider import Completion, JobStarted, ProviderHealth, StreamEvent, TextDelta


@dataclass
class ScriptedProvider:
    """Answers with `words`; `fail_before` raises before the first token, `fail_after` mid-stream."""

    name: str = "scripted"
    words: tuple[str, ...] = ("Hello", " there", ".")
    fail_before: ProviderError | None = None
    fail_after: int | None = None
    first_token_delay_s: float = 0.0
    job_prefix: str | None = None
    prompt_tokens: int = 3  # 0: a server that counts no input tokens (llama.cpp while streaming)
    seen: list[list[Message]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        self.seen.append(list(messages))
        job_id = f"{self.job_prefix}-{len(self.seen)}" if self.job_prefix else None
        if job_id:
            yield JobStarted(job_id)
        if self.first_token_delay_s:
            await anyio.sleep(self.first_token_delay_s)
        if self.fail_before is not None:
            raise self.fail_before
        for i, word in enumerate(self.words):
            if self.fail_after is not None and i == self.fail_after:
                raise ProviderError(f"{self.name} broke mid-stream", provider=self.name)
            yield TextDelta(word)
        yield Completion(
            text="".join(self.words),
            provider=self.name,
            model=model,
            usage=Usage(prompt_tokens=self.prompt_tokens, completion_tokens=len(self.words)),
            ttft_s=0.01,
            total_s=0.02,
            job_id=job_id,
        )

    async def warm(self, model: str) -> float:
        return 0.0

    async def health(self) -> ProviderHealth:
        return ProviderHealth(True, "scripted")

    async def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)
