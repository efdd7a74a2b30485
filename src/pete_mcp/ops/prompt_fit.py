"""Fit an operator's prompt to the chosen model's window, as VAPI turns are fitted.

Why: `run_prompt` without a conversation sent whatever it was given, so a long exchange went
to the model unfitted and failed (or was cut) there. This uses the same fitting as a VAPI turn
(`core.conversations.fit_to_window`: the newest whole turns that fit, the reply's room
reserved), but refuses a prompt whose newest message alone does not fit instead of cutting
what the operator typed. Tokens are counted with the model server's own tokenizer where one is
reachable (the local stack's llama.cpp server, `POST /extras/tokenize/count`); otherwise with
the pessimistic estimate VAPI turns use (Ollama on RunPod exposes no tokenizer to the gateway).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

import anyio
import httpx

from pete_mcp.contract import Message
from pete_mcp.core import DEFAULT_RESERVE_TOKENS, ModelSpec, estimate_tokens, fit_prompt
from pete_mcp.core.conversations import MESSAGE_OVERHEAD_TOKENS
from pete_mcp.gateway import ChatTurn, Core

__all__ = ["ModelTokenizer", "fit_turn", "tokenizer_for"]

log = logging.getLogger(__name__)


class ModelTokenizer:
    """Counts tokens with a llama.cpp (llama-cpp-python) server's tokenizer; None when it cannot."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, *, timeout_s: float = 2.0) -> None:
        self._http = http
        self._url = base_url.rstrip("/").removesuffix("/v1") + "/extras/tokenize/count"
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"ModelTokenizer({self._url!r})"

    async def count(self, model: str, text: str) -> int | None:
        with anyio.move_on_after(self._timeout_s):
            try:
                response = await self._http.post(
                    self._url, json={"model": model, "input": text}, timeout=self._timeout_s
                )
                count = response.json().get("count") if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                log.debug("tokenizer at %s unavailable: %s", self._url, exc)
                return None
            return count if isinstance(count, int) and not isinstance(count, bool) else None
        return None


def tokenizer_for(core: Core, spec: ModelSpec) -> ModelTokenizer | None:
    """The model server's tokenizer for `spec`, where the gateway can reach one.

    On the local stack the endpoint's workers serve from the local llama.cpp server, which the
    gateway can ask directly; a real RunPod endpoint (Ollama inside the worker) offers none.
    """
    settings = core.settings
    if settings.uses_real_runpod or spec.primary.provider != "runpod":
        return None
    return ModelTokenizer(core.http, f"http://127.0.0.1:{settings.model_server_port}")


async def _counter(tokenizer: ModelTokenizer | None, model: str, messages: list[dict[str, Any]]) -> Any:
    """A per-message token count: the tokenizer's where it answers for every message, else the estimate."""
    if tokenizer is None:
        return estimate_tokens
    counts: dict[int, int] = {}
    for message in messages:
        text = str(message.get("content") or "")
        if message.get("tool_calls"):
            text += json.dumps(message["tool_calls"], separators=(",", ":"))
        n = await tokenizer.count(model, text)
        if n is None:
            return estimate_tokens  # one answer missing: count everything the same way
        counts[id(message)] = n + MESSAGE_OVERHEAD_TOKENS
    return lambda message: counts.get(id(message)) or estimate_tokens(message)


async def fit_turn(core: Core, turn: ChatTurn, *, tokenizer: ModelTokenizer | None = None) -> ChatTurn:
    """`turn` with its messages fitted to its model's window (older turns dropped, whole).

    With a conversation, the core fits the stored thread for each turn (as for VAPI); this only
    checks that the new message itself fits.

    Raises:
        NotFound: unknown model.
        InputError: the newest message (with the system prompt) is larger than the window
            less the room reserved for the reply; the message names both.
    """
    spec = core.models.get(turn.model) if turn.model else core.active
    reserve = turn.options.max_tokens or DEFAULT_RESERVE_TOKENS
    given = [m.model_dump(exclude_none=True) for m in turn.messages]
    system = [m for m in given if m["role"] == "system"][-1:]
    if not system and spec.system_prompt:
        system = [{"role": "system", "content": spec.system_prompt}]
    rest = [m for m in given if m["role"] != "system"]
    tokenizer = tokenizer if tokenizer is not None else tokenizer_for(core, spec)
    count = await _counter(tokenizer, spec.primary.model, [*system, *rest])
    if turn.conversation_id:
        fit_prompt(system, rest[-1:], spec.context_window, reserve, count=count, model=spec.alias)
        return turn
    fitted = fit_prompt(system, rest, spec.context_window, reserve, count=count, model=spec.alias)
    return replace(turn, messages=[Message.model_validate(m) for m in fitted])
