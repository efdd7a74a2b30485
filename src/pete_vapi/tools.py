"""Jamie's tools: their descriptions, and running one by name against the property desk.

The same runner serves both ways a tool is asked for: the model's `<tool_call>` line in a
Custom LLM turn (pattern A) and VAPI's `tool-calls` server message (pattern C). Results are
one-line strings, as VAPI requires ("line breaks cause parsing errors"), and failures come
back as an error string the model can read, never as an exception. The business rules
(idempotency, categories) live in `pete_mcp.property_desk`, which the MCP server and the
dashboard also read; the built-ins VAPI executes itself (`transferCall`, `endCall`) are only
named here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pete_mcp.core.errors import PeteError
from pete_mcp.core.property_desk import CATEGORIES, URGENCIES, PropertyDesk, normalise_phone

from .escalation import Escalator

__all__ = [
    "BUILTIN_END",
    "BUILTIN_TRANSFER",
    "JAMIE_TOOLS",
    "JamieTools",
    "ToolContext",
    "ToolOutcome",
    "builtin_name",
    "tool_protocol_prompt",
]

log = logging.getLogger(__name__)

BUILTIN_TRANSFER = "transfer_call"
BUILTIN_END = "end_call"


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


_S = {"type": "string"}
JAMIE_TOOLS: tuple[dict[str, Any], ...] = (
    _fn("lookup_tenant", "Find the caller's name and unit from the number they are calling from.", {}, []),
    _fn(
        "create_maintenance_request",
        "Open a maintenance ticket; returns the ticket number to read back.",
        {
            "unit": _S,
            "category": {"type": "string", "enum": list(CATEGORIES)},
            "description": _S,
            "urgency": {"type": "string", "enum": list(URGENCIES)},
            "permission_to_enter": {"type": "boolean"},
            "callback_number": _S,
        },
        ["unit", "category", "description"],
    ),
    _fn("take_message", "Leave a message for the office.", {"name": _S, "number": _S, "message": _S}, ["message"]),
    _fn(
        "schedule_callback",
        "Ask the office to call the caller back.",
        {"name": _S, "number": _S, "reason": _S, "preferred_time": _S},
        ["reason"],
    ),
    _fn(
        "escalate_emergency",
        "Log an emergency and page the on-call team (then transfer the caller); the result says if a page went out.",
        {"category": _S, "summary": _S, "callback_number": _S},
        ["summary"],
    ),
)


def tool_protocol_prompt() -> str:
    """The system-prompt section that teaches a small model the `<tool_call>` line."""
    return (
        "Tools: when you need one, reply with only this line and nothing else:\n"
        '<tool_call>{"name": "TOOL", "arguments": {...}}</tool_call>\n'
        "- lookup_tenant {}: the caller's name and unit (only for the number they call from).\n"
        "- create_maintenance_request {unit, category, description, urgency, permission_to_enter, "
        "callback_number}: open a repair ticket and get its number.\n"
        "- take_message {name, number, message}: leave a message for the office.\n"
        "- schedule_callback {name, number, reason, preferred_time}: ask the office to call back.\n"
        "- escalate_emergency {category, summary, callback_number}: page the on-call team.\n"
        '- transfer_call {destination: "office" or "on_call"}: connect the caller to a person.\n'
        "- end_call {}: hang up, only after the caller said goodbye (say goodbye first).\n"
        "After a tool runs you see its result; then answer the caller in one or two short sentences."
    )


def builtin_name(tools: list[dict[str, Any]] | None, builtin: str) -> str:
    """The name VAPI gave a built-in in this request's `tools` (names come from tool config).

    Falls back to VAPI's type name (`transferCall` / `endCall`) when the request lists none.
    """
    want = "transfer" if builtin == BUILTIN_TRANSFER else "end"
    for tool in tools or []:
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else {}
        name = str((fn or {}).get("name") or tool.get("name") or "")
        squashed = name.replace("_", "").replace("-", "").lower()
        kind = str(tool.get("type") or "").lower()
        if want == "transfer" and ("transfer" in squashed or kind == "transfercall"):
            return name or "transferCall"
        if want == "end" and ("endcall" in squashed or "hangup" in squashed or kind == "endcall"):
            return name or "endCall"
    return "transferCall" if want == "transfer" else "endCall"


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool knows about the call it serves."""

    call_id: str
    caller_number: str | None = None


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """One line for the model or VAPI: `result` on success, `error` otherwise."""

    name: str
    result: str | None = None
    error: str | None = None

    @property
    def text(self) -> str:
        return self.result if self.result is not None else f"Error: {self.error}"


def _line(text: str) -> str:
    return " ".join(text.split())


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        return value.strip().lower() in ("yes", "true", "y", "ok", "sure", "1")
    return None


class JamieTools:
    """Runs Jamie's business tools by name."""

    names = frozenset(t["function"]["name"] for t in JAMIE_TOOLS)

    def __init__(self, desk: PropertyDesk, *, escalator: Escalator | None = None) -> None:
        self.desk = desk
        self.escalator = escalator or Escalator(desk, None, None)

    async def run(self, name: str, arguments: Mapping[str, Any], ctx: ToolContext) -> ToolOutcome:
        """Run `name`; never raises for the caller's or the model's mistakes."""
        handler = {
            "lookup_tenant": self._lookup_tenant,
            "create_maintenance_request": self._create_maintenance_request,
            "take_message": self._take_message,
            "schedule_callback": self._schedule_callback,
            "escalate_emergency": self._escalate_emergency,
        }.get(name)
        if handler is None:
            return ToolOutcome(name, error=f"unknown tool {name!r}; Jamie's tools are {', '.join(sorted(self.names))}.")
        try:
            return ToolOutcome(name, result=_line(await handler(dict(arguments), ctx)))
        except PeteError as exc:
            return ToolOutcome(name, error=_line(str(exc)))
        except (TypeError, ValueError) as exc:
            return ToolOutcome(name, error=_line(f"bad arguments for {name}: {exc}"))

    async def _lookup_tenant(self, args: dict[str, Any], ctx: ToolContext) -> str:
        """Only the number the call comes from: asked about another, it refuses without saying whether it exists."""
        caller = normalise_phone(ctx.caller_number)
        asked = normalise_phone(str(args.get("phone") or ""))
        if not caller:
            return "The caller's number is unknown, so no lookup is possible; ask for their name and unit."
        if asked and asked != caller:
            return "Tenant details are only given for the number this call comes from; ask for their name and unit."
        tenant = await self.desk.lookup_tenant(ctx.caller_number)
        if tenant is None:
            return "No tenant is on file for the number this call comes from; ask for their name and unit."
        return f"{tenant.name}, unit {tenant.unit} at {tenant.property}."

    async def _create_maintenance_request(self, args: dict[str, Any], ctx: ToolContext) -> str:
        ticket = await self.desk.create_maintenance_request(
            call_id=ctx.call_id,
            unit=str(args.get("unit") or ""),
            category=str(args.get("category") or "other"),
            description=str(args.get("description") or ""),
            urgency=str(args.get("urgency") or "routine"),
            permission_to_enter=_flag(args.get("permission_to_enter")),
            callback_number=str(args.get("callback_number") or ctx.caller_number or ""),
            property=str(args.get("property") or ""),
        )
        verb = "created" if ticket.new else "already open (updated)"
        return f"Ticket {ticket.ticket} {verb} for unit {ticket.unit}: {ticket.category}, {ticket.urgency}."

    async def _take_message(self, args: dict[str, Any], ctx: ToolContext) -> str:
        note = await self.desk.take_message(
            call_id=ctx.call_id,
            name=str(args.get("name") or ""),
            number=str(args.get("number") or ctx.caller_number or ""),
            message=str(args.get("message") or args.get("reason") or ""),
        )
        return f"Message {note.id} {'saved' if note.new else 'was already saved'} for the office."

    async def _schedule_callback(self, args: dict[str, Any], ctx: ToolContext) -> str:
        note = await self.desk.schedule_callback(
            call_id=ctx.call_id,
            name=str(args.get("name") or ""),
            number=str(args.get("number") or ctx.caller_number or ""),
            reason=str(args.get("reason") or ""),
            preferred_time=str(args.get("preferred_time") or args.get("time") or ""),
        )
        return f"Callback request {note.id} {'recorded' if note.new else 'was already recorded'}."

    async def _escalate_emergency(self, args: dict[str, Any], ctx: ToolContext) -> str:
        outcome = await self.escalator.escalate(
            call_id=ctx.call_id,
            category=str(args.get("category") or "other"),
            summary=str(args.get("summary") or args.get("description") or ""),
            callback_number=str(args.get("callback_number") or ctx.caller_number or ""),
        )
        log.warning("emergency escalated by tool: call=%s paged=%s", ctx.call_id, outcome.paged)
        return outcome.tool_result
