"""A recording of the worker-side requests exactly as they arrived.

The conformance test compares what the installed `runpod` SDK really sends (paths, query,
headers, body) with what the worker routes parse. Off by default: records hold the
per-worker secret from the `Authorization` header.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

__all__ = ["WireLog", "WireRecord"]


@dataclass(frozen=True)
class WireRecord:
    route: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes


class WireLog:
    """Worker-side requests, in arrival order, while `enabled`."""

    def __init__(self, *, enabled: bool = False) -> None:
        self.enabled = enabled
        self.records: list[WireRecord] = []

    def record(self, route: str, request: Request, body: bytes = b"") -> None:
        if not self.enabled:
            return
        self.records.append(
            WireRecord(
                route=route,
                method=request.method,
                path=request.url.path,
                query=tuple(request.query_params.multi_items()),
                headers={key.lower(): value for key, value in request.headers.items()},
                body=body,
            )
        )

    def of(self, route: str) -> list[WireRecord]:
        return [r for r in self.records if r.route == route]

    def clear(self) -> None:
        self.records.clear()
