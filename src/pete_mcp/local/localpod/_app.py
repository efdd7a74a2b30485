"""`build_localpod_app`: the endpoint's Starlette app from its composed state.

The app itself holds no state and starts nothing; `LocalPod` serves it with uvicorn and runs
the supervisor and the housekeeping tick. Tests may drive it in-process through
`httpx.ASGITransport`.
"""

from __future__ import annotations

from starlette.applications import Starlette

from ._admin import AdminApi
from ._http import Problem, problem_response
from ._openai import OpenAIApi
from ._public import PublicApi
from ._state import PodState
from ._workerside import WorkerApi

__all__ = ["build_localpod_app"]


def build_localpod_app(state: PodState) -> Starlette:
    routes = [
        *PublicApi(state).routes(),
        *OpenAIApi(state).routes(),
        *WorkerApi(state).routes(),
        *AdminApi(state).routes(),
    ]
    return Starlette(routes=routes, exception_handlers={Problem: problem_response})
