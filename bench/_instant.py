"""A provider that answers every request at once with three deltas: no network, no model, so a
benchmark measures the gateway around it (replicas, metrics_overhead)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from pete_mcp.contract import ChatOptions, Message, Usage
from pete_mcp.core.provider import Completion, ProviderHealth, StreamEvent, TextDelta

__all__ = ["InstantProvider"]

WORDS = ("Rent", " is due", " on the first.")


class InstantProvider:
    name = "instant"

    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        for word in WORDS:
            yield TextDelta(word)
        yield Completion(
            "".join(WORDS),
            self.name,
            model,
            usage=Usage(prompt_tokens=3, completion_tokens=len(WORDS)),
            ttft_s=0.001,
            total_s=0.002,
        )

    async def warm(self, model: str) -> float:
        return 0.0

    async def health(self) -> ProviderHealth:
        return ProviderHealth(True, self.name)

    async def cancel(self, job_id: str) -> None:
        return None
