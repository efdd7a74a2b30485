"""How a small model asks for a tool: one `<tool_call>{json}</tool_call>` line, parsed by the gateway.

Self-hosted small models do not do OpenAI tool calling reliably, so Jamie's tools follow
pattern A of vapi.md §1.6: the system prompt describes the tools and this one-line format;
the gateway spots the markup in the model's stream, keeps it from being spoken, runs the tool
itself and asks the model again with the result. `ToolCallScanner` does the spotting on a
stream: it passes speakable text through at once and holds back only what could be the start
of the markup. A reply that is a bare JSON object with a `name` also counts as a call.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["CLOSE", "OPEN", "ParsedCall", "SpokenText", "ToolCallScanner", "parse_call"]

log = logging.getLogger(__name__)

OPEN = "<tool_call>"
CLOSE = "</tool_call>"


@dataclass(frozen=True, slots=True)
class SpokenText:
    text: str


@dataclass(frozen=True, slots=True)
class ParsedCall:
    name: str
    arguments: dict[str, Any]


def parse_call(raw: str) -> ParsedCall | None:
    """`{"name": ..., "arguments": {...}}` (or `parameters`, or arguments as a JSON string), else None."""
    text = raw.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
        return None
    args = data.get("arguments", data.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return None
    return ParsedCall(data["name"], args) if isinstance(args, dict) else None


class ToolCallScanner:
    """Split a streamed reply into speakable text and tool calls, in order."""

    def __init__(self) -> None:
        self._buffer = ""
        self._in_call = False
        self._bare_json: bool | None = None  # decided by the reply's first non-space character
        self.raw_calls: list[str] = []

    def feed(self, text: str) -> list[SpokenText | ParsedCall]:
        if self._bare_json is None:
            stripped = (self._buffer + text).lstrip()
            if not stripped:
                self._buffer += text
                return []
            self._bare_json = stripped.startswith("{")
        if not (self._bare_json or self._in_call or self._buffer) and "<" not in text:
            return [SpokenText(text)]  # the common delta: plain speech, and nothing held back before it
        self._buffer += text
        if self._bare_json:
            return []  # a JSON reply is never spoken: wait for the end
        return self._drain(final=False)

    def close(self) -> list[SpokenText | ParsedCall]:
        """The stream ended: whatever is left (an unterminated call is parsed as far as it goes)."""
        if self._bare_json:
            raw, self._buffer = self._buffer, ""
            call = parse_call(raw)
            if call is None:
                log.warning("the model answered with JSON that is not a tool call; not speaking it")
                return []
            self.raw_calls.append(raw)
            return [call]
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[SpokenText | ParsedCall]:
        out: list[SpokenText | ParsedCall] = []
        while self._buffer:
            if self._in_call:
                end = self._buffer.find(CLOSE)
                if end == -1:
                    if final:
                        self._take_call(self._buffer, out)
                        self._buffer = ""
                    break
                self._take_call(self._buffer[:end], out)
                self._buffer = self._buffer[end + len(CLOSE) :]
                self._in_call = False
                continue
            start = self._buffer.find(OPEN)
            if start != -1:
                if start:
                    out.append(SpokenText(self._buffer[:start]))
                self._buffer = self._buffer[start + len(OPEN) :]
                self._in_call = True
                continue
            keep = 0 if final else _partial_open_suffix(self._buffer)
            speak = self._buffer[: len(self._buffer) - keep]
            if speak:
                out.append(SpokenText(speak))
            self._buffer = self._buffer[len(self._buffer) - keep :]
            break
        return out

    def _take_call(self, raw: str, out: list[SpokenText | ParsedCall]) -> None:
        call = parse_call(raw)
        if call is None:
            log.warning("ignored a malformed tool call from the model")
            return
        self.raw_calls.append(raw)
        out.append(call)


def _partial_open_suffix(text: str) -> int:
    """Length of the longest tail of `text` that is a proper prefix of `<tool_call>`."""
    start = text.rfind("<", -(len(OPEN) - 1))
    if start == -1:  # the common case, checked once per delta
        return 0
    for size in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if OPEN.startswith(text[-size:]):
            return size
    return 0
