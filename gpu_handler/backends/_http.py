"""HTTP failures of a model server, turned into Pete's exceptions with a message a person can act on.

Shared by both backends so "cannot connect" reads the same whichever server the worker runs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx

from ..errors import BadInput, ModelNotFound, ModelServerError, ModelServerTimeout, ModelServerUnavailable, WorkerError

__all__ = [
    "build_http_client",
    "open_stream",
    "raise_for_server_status",
    "send",
    "server_error_message",
    "translate_transport_errors",
]

_MESSAGE_LIMIT = 300


def build_http_client(*, read_timeout_s: float, max_connections: int) -> httpx.AsyncClient:
    """The worker's one `httpx.AsyncClient` to its model server (loopback, keep-alive pool).

    The read timeout is long because a first request may include loading a model.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=5.0, read=read_timeout_s, write=10.0, pool=read_timeout_s),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
    )


async def send(
    client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any] | None = None, *, stream: bool = False
) -> httpx.Response:
    """Send one request, retrying once if a reused keep-alive connection turns out to be dead.

    A server may drop a pooled connection (llama.cpp's does after a stream that failed
    mid-way); the next request on it fails before any response. Nothing was processed then,
    so one retry on a fresh connection is safe.
    """
    request = client.build_request(method, url, json=body)
    try:
        return await client.send(request, stream=stream)
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
        return await client.send(client.build_request(method, url, json=body), stream=stream)


@contextlib.asynccontextmanager
async def open_stream(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> AsyncIterator[httpx.Response]:
    """POST `body` and stream the response; the response is closed even while the task is cancelled.

    Closing the stream is what tells the model server to stop generating. httpx's own close
    can be cut short by a pending cancellation (it takes a lock first), which would leave the
    connection open and the server generating for nobody; so it runs shielded.
    """
    response = await send(client, "POST", url, body, stream=True)
    try:
        yield response
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


@contextlib.asynccontextmanager
async def translate_transport_errors(server: str, base_url: str) -> AsyncIterator[None]:
    """Re-raise httpx transport errors as ModelServerUnavailable / ModelServerTimeout / ModelServerError."""
    try:
        yield
    except httpx.ConnectError as err:
        raise ModelServerUnavailable(
            f"Cannot connect to the {server} model server at {base_url} ({_reason(err)}). "
            "Check that it is running and that WORKER_MODEL_URL points at it.",
            provider=server,
        ) from err
    except httpx.TimeoutException as err:
        raise ModelServerTimeout(
            f"The {server} model server at {base_url} did not answer in time ({type(err).__name__}). "
            "It may be overloaded or still loading a model; WORKER_READ_TIMEOUT_S sets the limit.",
            provider=server,
        ) from err
    except httpx.TransportError as err:
        raise ModelServerError(
            f"The connection to the {server} model server at {base_url} broke ({_reason(err)}).",
            provider=server,
        ) from err


async def raise_for_server_status(response: httpx.Response, *, server: str, model: str | None) -> None:
    """Raise the matching WorkerError for a 4xx/5xx answer; do nothing for 2xx."""
    if response.status_code < 400:
        return
    await response.aread()
    detail = _error_detail(response)
    status = response.status_code
    error: WorkerError
    if status == 404 and model is not None:
        error = ModelNotFound(
            f"The {server} model server has no model {model!r} ({detail}). "
            "Pick one the `models` control job lists, or bake it into the worker image."
        )
    elif 400 <= status < 500:
        error = BadInput(f"The {server} model server refused the request (HTTP {status}): {detail}")
    elif status == 503:
        error = ModelServerUnavailable(
            f"The {server} model server is busy or not ready (HTTP 503): {detail}", provider=server
        )
    else:
        error = ModelServerError(f"The {server} model server failed (HTTP {status}): {detail}", provider=server)
    raise error


def server_error_message(payload: Any) -> str | None:
    """The message inside an error payload (`{"error": "..."}` or `{"error": {"message": ...}}`)."""
    if not isinstance(payload, dict):
        return None
    error: Any = payload.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    if error is None:
        error = payload.get("detail")
    return None if error is None else _shorten(str(error))


def _error_detail(response: httpx.Response) -> str:
    try:
        message = server_error_message(json.loads(response.content))
    except ValueError:
        message = None
    return message or _shorten(response.text) or response.reason_phrase


def _shorten(text: str) -> str:
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    return first_line[:_MESSAGE_LIMIT]


def _reason(err: httpx.TransportError) -> str:
    return str(err) or type(err).__name__
