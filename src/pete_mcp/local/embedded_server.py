"""uvicorn embedded in a program that owns its own signals (`pete up`, the local endpoint, tests)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn

__all__ = ["EmbeddedServer"]


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the embedding program decides when to stop.

    uvicorn's handler re-raises SIGTERM once it has shut down, which would kill the embedding
    process before it stops its own children.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    @property
    def bound_port(self) -> int:
        return int(self.servers[0].sockets[0].getsockname()[1])
