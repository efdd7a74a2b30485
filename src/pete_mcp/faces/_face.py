"""The `Face` protocol: what a face hands the app. A leaf: it imports no face."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from starlette.middleware import Middleware
from starlette.routing import BaseRoute

__all__ = ["Face"]


@dataclass
class Face:
    name: str
    routes: list[BaseRoute]
    lifespan: Callable[[], AbstractAsyncContextManager[object]] | None = None
    middleware: list[Middleware] = field(default_factory=list)
