"""`build_localpod_app`: the endpoint's Starlette app from its composed state.

The app itself holds no state and starts nothing; `LocalPod` serves it with uvicorn and runs
the supervisor and the housekeeping tick. Tests may drive it in-process through
`httpx.ASGITransport`.
"""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from ._admin import AdminApi
from ._http import Problem, problem_response
from ._lb import LoadBalancerApi
from ._openai import OpenAIApi
from ._public import PublicApi
from ._state import PodState
from ._workerside import WorkerApi

__all__ = ["build_localpod_app"]


def build_localpod_app(state: PodState, http: httpx.AsyncClient | None = None) -> Starlette:
    """The endpoint's routes; `http` relays a load-balancing endpoint's requests to its workers."""
    routes = [
        *PublicApi(state).routes(),
        *OpenAIApi(state).routes(),
        *WorkerApi(state).routes(),
        *AdminApi(state).routes(),
        *(LoadBalancerApi(state, http).routes() if http is not None else []),
    ]
    return Starlette(routes=routes, exception_handlers={Problem: problem_response})
