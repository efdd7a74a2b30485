"""`POST /vapi/webhook`: VAPI's server messages, dispatched on `message.type`.

Replies follow vapi.md §2.3: `assistant-request` gets Jamie's configuration fast (the 7.5 s
limit is fixed; warming the model is fire-and-forget), `tool-calls` always gets HTTP 200 with
one single-line result per call, in order, and informational messages get `{}` at once.
Every record is idempotent, since VAPI may deliver a message more than once. Unknown types
are accepted and logged, so a new VAPI message type never produces an error. A body that is
not strict JSON (invalid UTF-8, NaN, deep nesting) or over the route's limit gets a 4xx naming
the problem. Unless the request itself was authenticated (`VAPI_AUTH` other than `none`), the
`assistant-request` reply carries no Custom LLM key and no tenant's details.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from pete_mcp.core.errors import AuthError, JsonInputError
from pete_mcp.core.jsonwire import loads_strict
from pete_mcp.core.property_desk import PropertyDesk
from pete_mcp.gateway import Core

from .assistant import jamie_assistant, llm_base_url
from .auth import WebhookAuth
from .background import Background
from .calls import CallBook, parse_end_of_call_report
from .redact import redact
from .tools import JamieTools, ToolContext, ToolOutcome
from .wire import ServerMessage, ToolCall

__all__ = ["ModelWarmer", "WebhookEndpoint"]

log = logging.getLogger(__name__)

QUIET_TYPES = frozenset({"transcript", "speech-update", "model-output", "voice-input", "assistant.speechStarted"})


class ModelWarmer:
    """Warm the active model when a call starts (assistant-request, status `in-progress`, or the
    first Custom LLM turn of a call), so the call's coming turns find a worker up.

    A provider that knows its endpoint's state for free (RunPod: `/health`, `/ping`) warms only
    when no worker is idle (`Core.warm_for_call`), every call. Any other is warmed and checked
    (`Core.warm`) at most once a minute. At most one check runs at a time.
    """

    def __init__(self, core: Core, background: Background, *, min_interval_s: float = 60.0) -> None:
        self.core = core
        self.background = background
        self.min_interval_s = min_interval_s
        self._running = False
        self._last = float("-inf")
        self.started = 0
        self.endpoint_warms = 0  # warm-ups started because the endpoint had no idle worker

    def warm_soon(self, *, endpoint_only: bool = False) -> bool:
        """Start the check in the background; `endpoint_only`: never fall back to `Core.warm`
        (a call's first turn is about to ask the model itself)."""
        if endpoint_only and not self.core.warms_for_calls():
            return False  # nothing to do for this provider: not even a task
        if self._running or not self.background.start_soon(self._warm, endpoint_only, name="warm active model"):
            return False
        self._running = True
        self.started += 1
        return True

    async def _warm(self, endpoint_only: bool) -> None:
        spec = self.core.active
        try:
            started = await self.core.warm_for_call(spec)
            if started:
                self.endpoint_warms += 1
                log.info("no idle worker for %s as a call starts: warming it for the call's turns", spec.alias)
            elif started is None and not endpoint_only and time.monotonic() - self._last >= self.min_interval_s:
                self._last = time.monotonic()
                seconds = await self.core.warm(spec)
                log.info("warmed %s for an incoming call in %.2fs", spec.alias, seconds)
        finally:
            self._running = False


class WebhookEndpoint:
    def __init__(
        self, core: Core, *, calls: CallBook, auth: WebhookAuth, warmer: ModelWarmer, tools: JamieTools
    ) -> None:
        self.core = core
        self.calls = calls
        self.auth = auth
        self.warmer = warmer
        self.tools = tools
        self.desk = PropertyDesk(core.store)
        self._warned_open = False

    async def handle(self, request: Request) -> JSONResponse:
        try:
            self.auth.check_headers(request.headers)
            body = await request.body()  # BodyTooLarge (413) propagates to the app's error handler
            self.auth.check_body(request.headers, body)
        except AuthError as exc:
            log.info("VAPI webhook refused: %s", exc)
            return JSONResponse({"error": {"code": exc.code, "message": str(exc)}}, status_code=401)
        try:
            payload = loads_strict(body or b"{}")
        except JsonInputError as exc:
            log.warning("VAPI server message refused: %s", exc)
            return JSONResponse({"error": {"code": exc.code, "message": str(exc)}}, status_code=exc.status)
        try:
            raw = payload.get("message", payload) if isinstance(payload, dict) else None
            if not isinstance(raw, dict):
                raise ValueError("no message object")
            message = ServerMessage.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            log.warning("unreadable VAPI server message (%s); answered {}", type(exc).__name__)
            return JSONResponse({})
        kind = message.type
        log.log(logging.DEBUG if kind in QUIET_TYPES else logging.INFO, "VAPI %s call=%s", kind or "?", message.call_id)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("VAPI %s payload: %s", kind, redact(raw))
        handler = {
            "assistant-request": self._assistant_request,
            "tool-calls": self._tool_calls,
            "function-call": self._function_call,
            "transfer-destination-request": self._transfer_destination,
            "status-update": self._status_update,
            "end-of-call-report": self._end_of_call_report,
            "conversation-update": self._conversation_update,
            "hang": self._hang,
            "user-interrupted": self._user_interrupted,
        }.get(kind)
        if handler is None:
            if kind not in QUIET_TYPES and not kind.startswith("transcript"):
                log.info("accepted VAPI message of unhandled type %r", kind)
            return JSONResponse({})
        try:
            return JSONResponse(await handler(message, request))
        except Exception:
            log.exception("VAPI %s handler failed for call %s", kind, message.call_id)
            if kind == "tool-calls":
                return JSONResponse({"results": _failed_results(message)})
            return JSONResponse({})

    # --- replies ---------------------------------------------------------------------------
    async def _assistant_request(self, message: ServerMessage, request: Request) -> dict[str, Any]:
        self.warmer.warm_soon()
        trusted = self.auth.authenticates
        tenant = None
        if trusted:
            with anyio.move_on_after(1.0):  # never let a slow lookup eat the 7.5 s budget
                tenant = await self.desk.lookup_tenant(message.caller_number)
        elif not self._warned_open:
            self._warned_open = True
            log.warning(
                "assistant-request over an unauthenticated webhook (VAPI_AUTH=none): answering without the "
                "Custom LLM key and tenant details; set VAPI_AUTH and VAPI_SECRET."
            )
        url = llm_base_url(self.core.settings, str(request.base_url))
        return jamie_assistant(
            self.core.settings, llm_url=url, model=self.core.active_alias, tenant=tenant, with_secret=trusted
        )

    async def _tool_calls(self, message: ServerMessage, request: Request) -> dict[str, Any]:
        ctx = ToolContext(message.call_id or "no-call", message.caller_number)
        results = [(await self._run_once(call, ctx)) for call in message.tool_calls()]
        return {"results": [_result(call, outcome) for call, outcome in results]}

    async def _run_once(self, call: ToolCall, ctx: ToolContext) -> tuple[ToolCall, ToolOutcome]:
        """Run a tool call once per `toolCall.id`; a redelivery gets the stored result."""
        name = call.tool_name
        if call.id:
            rows = await self.core.store.query(
                "SELECT name, result, error FROM vapi_tool_results WHERE tool_call_id = ?", (call.id,)
            )
            if rows:
                return call, ToolOutcome(rows[0]["name"], rows[0]["result"], rows[0]["error"])
        try:
            arguments = call.tool_arguments
        except ValueError as exc:
            outcome = ToolOutcome(name, error=f"arguments are not a JSON object: {exc}")
        else:
            outcome = await self.tools.run(name, arguments, ctx)
        if call.id:
            await self.core.store.execute(
                "INSERT INTO vapi_tool_results(tool_call_id, call_id, name, result, error, at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (call.id, ctx.call_id, name, outcome.result, outcome.error, time.time()),
            )
        return call, outcome

    async def _function_call(self, message: ServerMessage, request: Request) -> dict[str, Any]:
        """Legacy `function-call`: `functionCall{name, parameters}` → `{result}`."""
        fc = message.model_extra.get("functionCall") if message.model_extra else None
        if not isinstance(fc, dict):
            return {"result": "Error: no functionCall in the message."}
        call = ToolCall.model_validate({"name": fc.get("name"), "parameters": fc.get("parameters")})
        _, outcome = await self._run_once(call, ToolContext(message.call_id or "no-call", message.caller_number))
        return {"result": outcome.text}

    async def _transfer_destination(self, message: ServerMessage, request: Request) -> dict[str, Any]:
        settings = self.core.settings
        emergency = bool(
            message.call_id
            and await self.core.store.query("SELECT 1 FROM emergencies WHERE call_id = ?", (message.call_id,))
        )
        number = settings.on_call_number if emergency else settings.office_number
        return {
            "destination": {"type": "number", "number": number},
            "message": {"type": "request-start", "content": "Connecting you now."},
        }

    # --- informational ---------------------------------------------------------------------
    async def _status_update(self, message: ServerMessage, request: Request) -> dict[str, Any]:
        call_id, status = message.call_id, message.status or ""
        if status == "in-progress":
            self.calls.touch(call_id, source="status-update")
        elif status == "ended":
            self.calls.end(call_id, reason=message.endedReason or "ended")
        if call_id and status and await self.calls.once(call_id, "status-update", status):
            if status == "in-progress":
                self.warmer.warm_soon()
            await self.calls.record_status(
                call_id, status, caller=message.caller_number, ended_reason=message.endedReason or ""
            )
        return {}

    async def _end_of_call_report(self, message: ServerMessage, request: Request) -> dict[str, Any]:
        call_id = message.call_id
        report = parse_end_of_call_report(message)
        self.calls.end(call_id, reason=report.ended_reason or "ended")
        if call_id and await self.calls.once(call_id, "end-of-call-report"):
            await self.calls.record_report(call_id, report, caller=message.caller_number)
            log.info("call %s ended (%s), %s turns reported", call_id, report.ended_reason, len(report.turn_latencies))
        return {}

    async def _conversation_update(self, message: ServerMessage, request: Request) -> dict[str, Any]:
        if message.call_id and message.call and message.call.status != "ended":
            self.calls.touch(message.call_id, source="conversation-update")
        return {}

    async def _hang(self, message: ServerMessage, request: Request) -> dict[str, Any]:
        log.warning("VAPI reports the model hanging on call %s", message.call_id)
        self.core.events.publish("call.hang", call_id=message.call_id)
        return {}

    async def _user_interrupted(self, message: ServerMessage, request: Request) -> dict[str, Any]:
        turn_id = str((message.model_extra or {}).get("turnId") or "")
        if message.call_id:
            await self.calls.once(message.call_id, "user-interrupted", turn_id or str(message.timestamp or ""))
        return {}


def _result(call: ToolCall, outcome: ToolOutcome) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": call.tool_name or outcome.name, "toolCallId": call.id or ""}
    if outcome.error is not None:
        entry["error"] = outcome.error
    else:
        entry["result"] = outcome.result or ""
    return entry


def _failed_results(message: ServerMessage) -> list[dict[str, Any]]:
    return [
        {"name": c.tool_name, "toolCallId": c.id or "", "error": "The tool failed; offer to take a message."}
        for c in message.tool_calls()
    ]
