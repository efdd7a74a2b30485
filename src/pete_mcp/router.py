"""The router: picks the provider for each reply along the model's chain.

Failover happens only before the first token, so a reply never mixes two providers' text.
(The models issue adds circuit breakers and TTFT hedging here.)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence

from .contract import ChatOptions, Message
from .errors import AuthError, ConfigError, InputError, ProviderError
from .events import EventBus
from .models import ModelSpec, Route
from .providers.base import ModelProvider, StreamEvent, TextDelta

__all__ = ["Router"]

log = logging.getLogger(__name__)


class Router:
    def __init__(self, providers: Mapping[str, ModelProvider], events: EventBus) -> None:
        self.providers = dict(providers)
        self.events = events

    def provider(self, name: str) -> ModelProvider:
        try:
            return self.providers[name]
        except KeyError:
            raise ConfigError(
                f"provider {name!r} is not configured.", hint=f"Configured: {', '.join(self.providers)}."
            ) from None

    def routes(self, spec: ModelSpec) -> list[Route]:
        return [r for r in spec.chain if r.provider in self.providers]

    async def stream(
        self, spec: ModelSpec, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[StreamEvent]:
        routes = self.routes(spec)
        if not routes:
            raise ConfigError(f"no configured provider serves {spec.alias!r}.")
        last: ProviderError | None = None
        for i, route in enumerate(routes):
            started = False
            try:
                async for event in self.provider(route.provider).stream(route.model, messages, options):
                    if isinstance(event, TextDelta):
                        started = True
                    yield event
                return
            except (AuthError, InputError):
                raise
            except ProviderError as exc:
                if started or i == len(routes) - 1:
                    raise
                last = exc
                log.warning(
                    "provider %s failed before its first token (%s); trying %s",
                    route.provider,
                    exc,
                    routes[i + 1].provider,
                )
                self.events.publish(
                    "failover.started",
                    alias=spec.alias,
                    provider=route.provider,
                    to=routes[i + 1].provider,
                    reason=str(exc),
                )
        if last is not None:  # pragma: no cover - loop always returns or raises
            raise last
