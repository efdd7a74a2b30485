"""Conversation threads: persist every message as it happens, and build each turn's context.

The context for a turn is the model's system prompt plus the persisted thread, fitted to the
serving model's context window (the models issue refines the fitting).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .contract import Message
from .models import ModelSpec
from .store import Store

__all__ = ["Conversations", "fit_to_window"]

# A rough, model-independent token estimate (4 characters a token) is enough to stay inside the window.
CHARS_PER_TOKEN = 4


def _tokens(message: dict[str, Any]) -> int:
    return len(str(message.get("content") or "")) // CHARS_PER_TOKEN + 4


def fit_to_window(
    system: list[dict[str, Any]], thread: Sequence[dict[str, Any]], window: int, reserve: int
) -> list[dict[str, Any]]:
    """System messages plus the most recent turns that fit in `window - reserve` tokens.

    A tool result is never separated from the assistant message that called it.
    """
    budget = window - reserve - sum(_tokens(m) for m in system)
    kept: list[dict[str, Any]] = []
    for message in reversed(thread):
        cost = _tokens(message)
        if cost > budget and kept:
            break
        budget -= cost
        kept.append(message)
    kept.reverse()
    while kept and kept[0].get("role") == "tool":  # its call was cut off: drop the orphan result
        kept.pop(0)
    return [*system, *kept]


class Conversations:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(self, conversation_id: str, messages: Sequence[Message], *, source: str) -> None:
        await self.store.append_messages(
            conversation_id, [m.model_dump(exclude_none=True) for m in messages], source=source
        )

    async def record_reply(self, conversation_id: str, text: str, *, source: str, model: str, provider: str) -> None:
        await self.store.append_messages(
            conversation_id,
            [{"role": "assistant", "content": text}],
            source=source,
            model=model,
            provider=provider,
        )

    async def context(self, conversation_id: str, spec: ModelSpec, *, reserve: int = 256) -> list[Message]:
        thread = [
            {k: v for k, v in m.items() if k not in ("seq", "model", "provider", "created_at")}
            for m in await self.store.thread(conversation_id)
        ]
        system = [m for m in thread if m["role"] == "system"][-1:]
        if not system and spec.system_prompt:
            system = [{"role": "system", "content": spec.system_prompt}]
        rest = [m for m in thread if m["role"] != "system"]
        return [Message.model_validate(m) for m in fit_to_window(system, rest, spec.context_window, reserve)]
