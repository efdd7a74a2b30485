"""VAPI's wire shapes, parsed leniently: every field optional, unknown keys kept.

VAPI's payloads change shape between versions (legacy `callId`, `toolCalls` beside
`toolCallList`, two end-of-call-report layouts, `arguments` as object or JSON string), so
the runtime never rejects a payload for a missing or extra field. The helpers here apply the
documented read orders once, so routes read `request.call_id` instead of digging.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pete_mcp.contract import Message
from pete_mcp.core.errors import JsonInputError
from pete_mcp.core.jsonwire import loads_strict

__all__ = [
    "CallInfo",
    "ChatCompletionRequest",
    "ServerMessage",
    "ToolCall",
    "WireMessage",
    "parse_tool_arguments",
    "text_of",
]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class WireMessage(_Lenient):
    """One OpenAI-style message as VAPI sends it; `content` may be a list of parts."""

    role: str | None = None
    content: Any = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def to_message(self) -> Message | None:
        """Pete's `Message` (roles mapped, parts joined), or None for a role Pete cannot use."""
        role = {"function": "tool"}.get(self.role or "", self.role or "")
        if role not in ("system", "user", "assistant", "tool"):
            return None
        extra: dict[str, Any] = {}
        if self.tool_calls:
            extra["tool_calls"] = self.tool_calls
        if self.tool_call_id:
            extra["tool_call_id"] = self.tool_call_id
        if self.name and role == "tool":
            extra["name"] = self.name
        return Message.model_validate({"role": role, "content": text_of(self.content), **extra})


class CallInfo(_Lenient):
    id: str | None = None
    callId: str | None = None
    type: str | None = None
    status: str | None = None
    customer: dict[str, Any] | None = None
    monitor: dict[str, Any] | None = None
    assistantOverrides: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class _FromCall(_Lenient):
    """Who is calling, read leniently from where VAPI puts it on both the LLM request and server messages."""

    call: CallInfo | None = None
    customer: dict[str, Any] | None = None

    @property
    def call_id(self) -> str | None:
        """`call.id`, then the legacy `call.callId`."""
        if self.call is None:
            return None
        return self.call.id or self.call.callId

    @property
    def caller_number(self) -> str | None:
        """`customer.number`, then `call.customer.number`."""
        for holder in (self.customer, self.call.customer if self.call else None):
            if holder and isinstance(holder.get("number"), str):
                return holder["number"]
        return None


class ChatCompletionRequest(_FromCall):
    """The Custom LLM request: OpenAI chat completions plus VAPI's `call`, `customer`, ..."""

    model: str | None = None
    messages: list[WireMessage] = Field(default_factory=list)
    stream: bool | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    phoneNumber: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    @property
    def control_url(self) -> str | None:
        monitor = self.call.monitor if self.call else None
        url = (monitor or {}).get("controlUrl")
        return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None

    @property
    def wants_stream(self) -> bool:
        """Stream unless `stream` is explicitly false (never decided from `Accept`)."""
        return self.stream is not False


class ToolCall(_Lenient):
    """One entry of `toolCallList` (or legacy `toolCalls`): `function.arguments` or flat `parameters`."""

    id: str | None = None
    type: str | None = None
    function: dict[str, Any] | None = None
    name: str | None = None
    parameters: Any = None
    arguments: Any = None

    @property
    def tool_name(self) -> str:
        return str((self.function or {}).get("name") or self.name or "")

    @property
    def tool_arguments(self) -> dict[str, Any]:
        """Arguments from `function.arguments` (object or JSON string), else `arguments`, else `parameters`."""
        for raw in ((self.function or {}).get("arguments"), self.arguments, self.parameters):
            if raw not in (None, "", {}):
                return parse_tool_arguments(raw)
        return {}


class ServerMessage(_FromCall):
    """The `message` object of a Server URL POST; dispatch is on `type`."""

    type: str = ""
    timestamp: float | None = None
    phoneNumber: dict[str, Any] | None = None
    status: str | None = None
    endedReason: str | None = None
    toolCallList: list[ToolCall] | None = None
    toolCalls: list[ToolCall] | None = None
    toolWithToolCallList: list[dict[str, Any]] | None = None
    artifact: dict[str, Any] | None = None
    analysis: dict[str, Any] | None = None

    def tool_calls(self) -> list[ToolCall]:
        """`toolCallList`, else legacy `toolCalls` (never both), deduplicated on id, in order."""
        calls = self.toolCallList if self.toolCallList else (self.toolCalls or [])
        seen: set[str] = set()
        out: list[ToolCall] = []
        for call in calls:
            if call.id and call.id in seen:
                continue
            if call.id:
                seen.add(call.id)
            out.append(call)
        return out


def text_of(content: Any) -> str:
    """A message's text: a string as is, a list of parts joined (text parts only)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return str(content)


def parse_tool_arguments(raw: Any) -> dict[str, Any]:
    """Tool arguments as a dict, whether VAPI sent an object or a JSON string.

    Raises:
        ValueError: a string that is not a JSON object.
    """
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            parsed = loads_strict(raw) if raw.strip() else {}
        except JsonInputError as exc:
            raise ValueError(str(exc).replace("the request body", "the arguments")) from None
        if not isinstance(parsed, dict):
            raise ValueError("tool arguments must be a JSON object.")
        return parsed
    raise ValueError(f"tool arguments must be an object or a JSON string, not {type(raw).__name__}.")
