"""The provider protocol: what the router needs from any model backend.

A provider streams one reply as `StreamEvent`s: an optional `JobStarted` (the upstream job
id, so a caller can cancel or follow up), `TextDelta`s, and exactly one `Completion` last.
Failures raise `pete_mcp.core.ProviderError` subclasses. A new backend is one module
implementing this and one line in `build_core`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeGuard, TypeVar, runtime_checkable

from pete_mcp.contract import ChatOptions, Message, Usage

__all__ = [
    "CONVERSATION",
    "Completion",
    "JobStarted",
    "ModelProvider",
    "ProviderHealth",
    "Readiness",
    "ReportsReadiness",
    "StreamEvent",
    "TextDelta",
    "WarmsForCalls",
    "capable",
    "close_stream",
    "estimate_prompt_tokens",
]


CONVERSATION: ContextVar[str | None] = ContextVar("pete_conversation", default=None)
"""The conversation (call) the turn being routed belongs to, set by `Core.chat`: a provider that
can keep a call on one worker (RunPod load-balancing affinity) keys on it. None outside a call."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class JobStarted:
    job_id: str


@dataclass(frozen=True, slots=True)
class Completion:
    """The end of one reply, as the provider produced it."""

    text: str
    provider: str
    model: str
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    ttft_s: float | None = None
    total_s: float = 0.0
    job_id: str | None = None
    worker_id: str | None = None


StreamEvent = TextDelta | JobStarted | Completion


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    ok: bool
    detail: str
    figures: dict[str, int | float | str] = field(default_factory=dict)


@runtime_checkable
class ModelProvider(Protocol):
    name: str

    def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        """Stream one reply from `model` (the provider's own model name)."""
        ...

    async def warm(self, model: str) -> float:
        """Load `model` and make sure it answers; return the seconds it took."""
        ...

    async def health(self) -> ProviderHealth: ...

    async def cancel(self, job_id: str) -> None:
        """Stop an upstream job, best effort (no-op where the provider has no jobs)."""
        ...


Readiness = Literal["warm", "busy", "cold", "unknown"]
"""Whether a job sent now would start at once (`warm`), queue behind running work (`busy`),
wait for a cold start (`cold`), or nobody knows yet (`unknown`)."""


@runtime_checkable
class ReportsReadiness(Protocol):
    """A provider that knows, for free, whether its backend could start a job right now (RunPod)."""

    def readiness(self) -> Readiness:
        """The backend's state as last seen; never blocks and sends nothing billed."""
        ...

    def warm_soon(self, model: str) -> None:
        """Start bringing a worker up for `model` in the background (at most one at a time)."""
        ...


@runtime_checkable
class WarmsForCalls(Protocol):
    """A provider that can warm its backend for a call about to start, only when it is not warm."""

    async def warm_for_call(self, model: str) -> bool:
        """Start a background warm-up unless a worker is idle now; True when one was started."""
        ...


_Capability = TypeVar("_Capability")


def capable(provider: object, capability: type[_Capability]) -> TypeGuard[_Capability]:
    """`isinstance(provider, capability)` for the runtime-checkable protocols above, cached per class.

    A runtime Protocol check walks the protocol's attributes on every call (tens of µs), and the
    router asks on every request; providers get these methods from their class, so the answer
    for a class never changes.
    """
    return _class_capable(type(provider), capability)


@functools.cache
def _class_capable(cls: type, capability: type) -> bool:
    return issubclass(cls, capability)  # methods-only protocols: the class answers for its instances


async def close_stream(stream: AsyncIterator[StreamEvent]) -> None:
    """Close a provider stream early (runs its cleanup: a RunPod job is cancelled there).

    `ModelProvider.stream` is typed as an `AsyncIterator`; every implementation is an async
    generator, which has `aclose`.
    """
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


# English averages about four characters per token in the Llama/SmolLM tokenizers; each message
# adds a few template tokens (role markers). Only for a server that reports no usage.
_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4


def estimate_prompt_tokens(messages: Sequence[Message]) -> int:
    """Input tokens of `messages` for a server that counts none (llama.cpp's while streaming): an estimate."""
    chars = sum(len(m.content) for m in messages)
    return -(-chars // _CHARS_PER_TOKEN) + _TOKENS_PER_MESSAGE * len(messages)
