"""Who may call which route: endpoint id, injected faults, then the key.

Public routes take the endpoint's API key (bearer or raw); worker routes take the calling
worker's own secret, raw, as the runpod SDK sends it. An injected route fault answers
before anything else, like a rate limiter in front of the real service.
"""

from __future__ import annotations

from starlette.requests import Request

from ._http import Problem, api_key_matches
from ._state import PodState
from ._workers import Worker

__all__ = ["admit_public", "admit_worker"]


def admit_public(state: PodState, request: Request, route: str) -> None:
    """Raises Problem: 429/5xx (injected fault), 401 (bad key) or 404 (unknown endpoint)."""
    _check_fault(state, route)
    if not api_key_matches(request.headers.get("authorization"), state.config.api_key):
        raise Problem(401, "Unauthorized: the API key is missing or wrong.")
    _check_endpoint(state, request)


def admit_worker(state: PodState, request: Request, route: str) -> Worker:
    """The calling worker. Raises Problem: injected fault, 404 (endpoint), 401 (not that worker)."""
    _check_fault(state, route)
    _check_endpoint(state, request)
    worker = state.workers.authenticate(request.path_params["worker_id"], request.headers.get("authorization"))
    if worker is None:
        raise Problem(401, "Unknown worker or wrong worker key.")
    return worker


def _check_fault(state: PodState, route: str) -> None:
    status = state.faults.route_failure(route)
    if status is not None:
        message = "Too many requests (injected fault)." if status == 429 else "Server error (injected fault)."
        raise Problem(status, message)


def _check_endpoint(state: PodState, request: Request) -> None:
    if request.path_params.get("endpoint_id") != state.config.endpoint_id:
        raise Problem(404, "No such endpoint.")
