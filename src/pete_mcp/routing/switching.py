"""Zero-downtime model switching: warm the target, check it answers, then the core swaps.

Why its own module: a switch must never leave callers on a model that does not answer. The
target is warmed (a RunPod control job or a one-token probe) and then asked a short
question through the same provider; only a non-empty answer within the budget lets the
core swap its active alias (one assignment, so atomic for every request that starts
afterwards; requests already running resolved their model when they began). Every try,
successful or not, is a row in the `switches` table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import anyio

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import (
    Completion,
    ConfigError,
    ModelSpec,
    PeteError,
    ProviderError,
    ProviderTimeout,
    Store,
    close_stream,
)

from .router import Router

__all__ = [
    "PROBE_PROMPT",
    "SwitchRecord",
    "WarmCheck",
    "record_switch",
    "switch_error",
    "switch_history",
    "warm_and_verify",
]

PROBE_PROMPT = "Say hello in a few words."
_PROBE_OPTIONS = ChatOptions(max_tokens=8, temperature=0.0)


@dataclass(frozen=True, slots=True)
class WarmCheck:
    """What a successful warm-up found: time taken, which provider, what the model said."""

    warmup_s: float
    provider: str
    model: str
    sample: str


@dataclass(frozen=True, slots=True)
class SwitchRecord:
    """One row of the switch history (newest first from `switch_history`)."""

    id: int
    at: float
    from_model: str | None
    to_model: str
    warmup_s: float | None
    by: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "from": self.from_model,
            "to": self.to_model,
            "warmup_s": self.warmup_s,
            "by": self.by,
            "ok": self.ok,
            "detail": self.detail,
        }


async def warm_and_verify(router: Router, spec: ModelSpec, *, budget_s: float) -> WarmCheck:
    """Warm `spec` on its first usable route and check it answers with text, all within `budget_s`.

    Raises:
        ConfigError: no configured provider serves the model.
        ProviderTimeout: warm-up plus probe took longer than `budget_s`.
        ProviderError: the warm-up failed, or the model answered with nothing.
    """
    routes = router.usable_routes(spec) or router.routes(spec)
    if not routes:
        raise ConfigError(
            f"no configured provider serves {spec.alias!r} (its chain: "
            f"{', '.join(r.provider for r in spec.chain)}; configured: {', '.join(router.providers) or 'none'})."
        )
    route = routes[0]
    provider = router.provider(route.provider)
    started = time.perf_counter()
    text = ""
    with anyio.move_on_after(budget_s) as scope:
        await provider.warm(route.model)
        messages = [Message(role="user", content=PROBE_PROMPT)]
        if spec.system_prompt:
            messages.insert(0, Message(role="system", content=spec.system_prompt))
        events = provider.stream(route.model, messages, _PROBE_OPTIONS)
        try:
            async for event in events:
                if isinstance(event, Completion):
                    text = event.text
        finally:
            await close_stream(events)
    elapsed = time.perf_counter() - started
    if scope.cancelled_caught:
        raise ProviderTimeout(
            f"{route.provider} did not warm up and answer {route.model!r} within {budget_s:g} s.",
            provider=route.provider,
        )
    if not text.strip():
        raise ProviderError(
            f"{route.provider} loaded {route.model!r} but it answered a test question with empty text.",
            provider=route.provider,
        )
    return WarmCheck(elapsed, route.provider, route.model, text.strip()[:80])


def switch_error(exc: PeteError, *, target: str, active: str) -> PeteError:
    """The error a caller sees for a failed switch: what failed, and that nothing changed."""
    message = f"Switch to {target!r} failed, so {active!r} stays active: {exc.message}"
    hint = exc.hint or "Check the provider with `pete doctor` (or the dashboard's health panel) and try again."
    if isinstance(exc, ConfigError):
        return ConfigError(message, hint=hint)
    if isinstance(exc, ProviderTimeout):
        return ProviderTimeout(message, provider=exc.provider, hint=hint)
    return ProviderError(message, provider=getattr(exc, "provider", ""), hint=hint)


async def record_switch(
    store: Store,
    *,
    from_model: str | None,
    to_model: str,
    warmup_s: float | None,
    by: str,
    ok: bool,
    detail: str = "",
) -> int:
    return await store.insert(
        "INSERT INTO switches(at, from_model, to_model, warmup_s, by, ok, detail) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "RETURNING id",
        (time.time(), from_model, to_model, warmup_s, by, int(ok), detail),
    )


async def switch_history(store: Store, *, limit: int = 50) -> list[SwitchRecord]:
    """The most recent switches, newest first (failed tries included)."""
    rows = await store.query(
        "SELECT id, at, from_model, to_model, warmup_s, by, ok, detail FROM switches ORDER BY id DESC LIMIT ?",
        (max(1, limit),),
    )
    return [
        SwitchRecord(
            id=row["id"],
            at=row["at"],
            from_model=row["from_model"],
            to_model=row["to_model"],
            warmup_s=row["warmup_s"],
            by=row["by"],
            ok=bool(row["ok"]),
            detail=row["detail"],
        )
        for row in rows
    ]
