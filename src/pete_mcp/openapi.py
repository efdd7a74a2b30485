"""`GET /openapi.json`: an OpenAPI 3.1 description of Pete's HTTP API, built from the request models.

It covers `/healthz`, the dashboard's `/api/*` and `/metrics`, and the VAPI routes; request
bodies come from the same pydantic models the routes validate with (`model_json_schema`), so
the description cannot drift from the code. `/mcp` is left out: it is JSON-RPC over Streamable
HTTP, described by the MCP specification rather than by OpenAPI. Schemathesis reads this
document in the tests (`tests/test_openapi.py`) and the fuzz bench (`bench/fuzz.py`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse

from pete_mcp.faces.dashboard import DeployBody, PromptBody, SwitchBody
from pete_vapi.wire import ChatCompletionRequest, ServerMessage

__all__ = ["openapi_document", "openapi_route"]

VERSION = "0.1.0"
_REF = "#/components/schemas/{model}"


class WebhookBody(BaseModel):
    """A VAPI Server URL POST: `{"message": {...}}` (vapi.md §2)."""

    message: ServerMessage


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    }


def _errors(*statuses: int) -> dict[str, Any]:
    words = {
        400: "Bad input: the message names the field.",
        401: "Missing or wrong credential.",
        403: "The action is off (no MCP_TOKEN configured).",
        404: "Unknown model.",
        413: "The body is over the route's limit.",
        421: "A Host this server does not serve.",
        501: "Not available here.",
        502: "The upstream failed.",
        503: "The upstream is unavailable.",
        504: "The upstream timed out.",
    }
    ref = {"$ref": "#/components/schemas/Error"}
    return {str(s): {"description": words[s], "content": {"application/json": {"schema": ref}}} for s in statuses}


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def _read(summary: str, *, media: str = "application/json") -> dict[str, Any]:
    ok = {
        "description": "OK",
        "content": {media: {"schema": {"type": "object"} if "json" in media else {"type": "string"}}},
    }
    return {"get": {"summary": summary, "responses": {"200": ok, **_errors(401, 403, 421)}}}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": _REF.format(model=name)}}}}


def openapi_document() -> dict[str, Any]:
    """The whole document (a fresh dict; callers may change it)."""
    models: list[type[BaseModel]] = [SwitchBody, PromptBody, DeployBody, ChatCompletionRequest, WebhookBody]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    schemas: dict[str, Any] = {**defs.get("$defs", {}), "Error": _error_schema()}
    sse = {"description": "A stream of SSE frames.", "content": {"text/event-stream": {"schema": {"type": "string"}}}}
    llm_post = {
        "post": {
            "summary": "VAPI Custom LLM: OpenAI chat completions in, VAPI-safe SSE (or one JSON body) out.",
            "requestBody": _body("ChatCompletionRequest"),
            "responses": {
                "200": {
                    "description": "An SSE stream that always ends with a finish frame and [DONE] "
                    "(or one chat.completion with stream:false).",
                    "content": {
                        "text/event-stream": {"schema": {"type": "string"}},
                        "application/json": {"schema": {}},
                    },
                },
                **_errors(400, 401, 413, 421),
            },
        }
    }
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "summary": "Liveness and the active model.",
                "responses": {"200": _json("OK", {"type": "object", "required": ["ok"]})},
            }
        },
        "/api/metrics": _read("The metrics snapshot."),
        "/api/models": _read("The model registry and the active model."),
        "/api/health": {
            "get": {
                "summary": "System checks with fix hints; ?probe=1 adds the billed one-token probe (needs the token).",
                "parameters": [
                    {"name": "probe", "in": "query", "required": False, "schema": {"type": "string", "enum": ["1"]}}
                ],
                "responses": {"200": _json("OK"), **_errors(401, 403, 421)},
            }
        },
        "/api/events": {
            "get": {
                "summary": "Core events as SSE (token also as ?access_token= beyond loopback).",
                "parameters": [
                    {"name": "access_token", "in": "query", "required": False, "schema": {"type": "string"}}
                ],
                "responses": {"200": sse, **_errors(401, 403, 421)},
            }
        },
        "/metrics": _read("Prometheus exposition.", media="text/plain"),
        "/api/logs": {
            "get": {
                "summary": "Recent log lines (needs the token).",
                "parameters": [{"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}}],
                "responses": {"200": _json("OK"), **_errors(400, 401, 403, 421)},
            }
        },
        "/api/switch": {
            "post": {
                "summary": "Switch the active model (needs the token).",
                "requestBody": _body("SwitchBody"),
                "responses": {"200": _json("OK"), **_errors(400, 401, 403, 404, 413, 421, 502, 503, 504)},
            }
        },
        "/api/prompt": {
            "post": {
                "summary": "One prompt, streamed (needs the token).",
                "requestBody": _body("PromptBody"),
                "responses": {"200": sse, **_errors(400, 401, 403, 404, 413, 421)},
            }
        },
        "/api/deploy": {
            "post": {
                "summary": "Start a RunPod deploy (needs the token).",
                "requestBody": _body("DeployBody"),
                "responses": {"202": _json("Accepted"), **_errors(400, 401, 403, 413, 421, 501, 502)},
            }
        },
        "/vapi/chat/completions": llm_post,
        "/vapi/llm/chat/completions": llm_post,
        "/vapi/webhook": {
            "post": {
                "summary": "VAPI server messages, dispatched on message.type.",
                "requestBody": _body("WebhookBody"),
                "responses": {
                    "200": _json("The reply for the message type ({} when none)."),
                    **_errors(400, 401, 413, 421),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pete",
            "version": VERSION,
            "description": "Pete's HTTP API (MCP is at /mcp, not described here).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi_route(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document())
