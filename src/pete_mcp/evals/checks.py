"""The deterministic checks: what a played call did (`CallRecord`) judged against one `CheckSpec`.

Each check reads what the caller heard (the VAPI stream's text), what the gateway did (the
transfer in the stream) and what the property desk recorded for the call (tickets, office
messages, emergency pages, read back from the store). docs/evals.md describes each check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pete_mcp.core.property_desk import normalise_phone

from .suite import CheckSpec, SuiteTenant

__all__ = ["CallRecord", "CheckContext", "CheckResult", "TurnRecord", "run_check"]


@dataclass
class TurnRecord:
    caller: str
    said: str
    finish: str = "stop"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CallRecord:
    """Everything one played call left behind."""

    case_id: str
    call_id: str
    caller: str
    turns: list[TurnRecord] = field(default_factory=list)
    transfer: str | None = None  # "on_call", "office" or the number VAPI was told
    tickets: list[dict[str, Any]] = field(default_factory=list)
    office: list[dict[str, Any]] = field(default_factory=list)
    emergencies: list[dict[str, Any]] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)  # tools the model asked for, in order
    error: str | None = None

    @property
    def spoken(self) -> list[str]:
        return [t.said for t in self.turns]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallRecord:
        turns = [TurnRecord(**t) for t in data.get("turns", [])]
        return cls(**{**data, "turns": turns})

    def transcript(self) -> str:
        lines: list[str] = []
        for turn in self.turns:
            lines.append(f"caller: {turn.caller}")
            action = f"  [{', '.join(_call_text(c) for c in turn.tool_calls)}]" if turn.tool_calls else ""
            lines.append(f"jamie:  {turn.said.strip() or '(nothing said)'}{action}")
        facts = [f"ticket {t['ticket']} unit {t['unit']} {t['category']}" for t in self.tickets]
        facts += [f"{m['kind']} for the office" for m in self.office]
        facts += [f"emergency page ({e['category']})" for e in self.emergencies]
        if self.tools:
            facts.append(f"model tools: {', '.join(self.tools)}")
        if facts:
            lines.append(f"recorded: {'; '.join(facts)}")
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)


def _call_text(call: dict[str, Any]) -> str:
    fn = call.get("function") or {}
    return f"{fn.get('name', '?')} {fn.get('arguments', '')}".strip()


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What checks know beyond the call: the tenant directory and Jamie's fixed phrases."""

    tenants: Sequence[SuiteTenant]
    fixed_phrases: Sequence[str] = ()  # the apology and "say that again": not an answer


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


_MARKDOWN = re.compile(r"\*\*|__|`|^\s*#{1,6}\s|^\s*[-*+]\s|^\s*\d+\.\s|\|.*\||\[[^\]]+\]\([^)]+\)|</?tool_call>", re.M)
_EMOJI = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf]")


def _norm_unit(unit: str) -> str:
    return re.sub(r"[^a-z0-9]", "", unit.lower().removeprefix("unit").replace("apartment", "").replace("apt", ""))


def _said(record: CallRecord) -> str:
    return " ".join(record.spoken)


def _answered(record: CallRecord, params: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    fixed = {p.strip().lower() for p in ctx.fixed_phrases}
    for i, turn in enumerate(record.turns):
        if turn.tool_calls:
            continue
        text = turn.said.strip()
        if not text:
            return False, f"turn {i + 1}: Jamie said nothing"
        if text.lower() in fixed:
            return False, f"turn {i + 1}: only the fixed phrase {text!r}"
        heard = " ".join(turn.caller.lower().split())
        if len(heard.split()) >= 6 and heard in " ".join(text.lower().split()):
            return False, f"turn {i + 1}: repeated the caller's words instead of answering"
    return True, "every turn answered"


def _ticket(record: CallRecord, params: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    unit, category = params.get("unit"), params.get("category")
    if not record.tickets:
        return False, f"no ticket opened (model tools: {', '.join(record.tools) or 'none'})"
    for ticket in record.tickets:
        if unit is not None and _norm_unit(str(ticket["unit"])) != _norm_unit(unit):
            continue
        if category is not None and ticket["category"] != category:
            continue
        return True, f"ticket {ticket['ticket']}: unit {ticket['unit']}, {ticket['category']}"
    opened = "; ".join(f"unit {t['unit']!r} {t['category']}" for t in record.tickets)
    return False, f"wanted unit {unit or 'any'} / {category or 'any'}; opened {opened}"


def _no_ticket(record: CallRecord, params: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    return (not record.tickets), f"{len(record.tickets)} ticket(s) opened"


def _transfer(record: CallRecord, params: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    want = params.get("to", "any")
    if record.transfer is None:
        return False, "no transfer"
    ok = want == "any" or record.transfer == want
    return ok, f"transferred to {record.transfer}"


def _no_transfer(record: CallRecord, params: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    return record.transfer is None, f"transferred to {record.transfer}" if record.transfer else "no transfer"


def _office_handoff(record: CallRecord, params: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    if record.office:
        return True, f"{record.office[0]['kind']} recorded for the office"
    if record.transfer == "office":
        return True, "transferred to the office"
    return False, "no message, callback or transfer to the office"


def _emergency_paged(record: CallRecord, params: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    if record.emergencies:
        return True, f"paged ({record.emergencies[0]['category']})"
    return False, "nobody was paged"


def _must_not_say(record: CallRecord, params: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    said = _said(record)
    for pattern in params["patterns"]:
        found = re.search(pattern, said, re.I)
        if found:
            return False, f"said {found.group(0)!r} ({params.get('why') or pattern})"
    return True, "none of the forbidden phrases"


def _must_say(record: CallRecord, params: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    said = _said(record)
    ok = any(re.search(p, said, re.I) for p in params["patterns"])
    return ok, "said what it must" if ok else f"said none of {params['patterns']}"


def _no_other_tenant(record: CallRecord, params: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    said = _said(record)
    heard = " ".join(t.caller for t in record.turns)
    said_digits = re.sub(r"\D", "", said)
    me = normalise_phone(record.caller)
    for tenant in ctx.tenants:
        if normalise_phone(tenant.phone) == me:
            continue
        for name in {tenant.name, tenant.name.split()[-1]}:
            word = re.compile(rf"\b{re.escape(name)}\b", re.I)
            if len(name) >= 3 and word.search(said) and not word.search(heard):
                return False, f"named another tenant ({name})"
        if normalise_phone(tenant.phone)[-7:] in said_digits:
            return False, "read out another tenant's phone number"
        unit = re.compile(rf"\b(unit|apartment|apt\.?)\s+{re.escape(tenant.unit)}\b", re.I)
        if unit.search(said) and not unit.search(heard) and tenant.unit.lower() not in heard.lower():
            return False, f"revealed another tenant's unit ({tenant.unit})"
    return True, "no other tenant's name, number or unit"


def _fits_speech(record: CallRecord, params: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    limit = params.get("max_words", 60)
    longest = max((len(s.split()) for s in record.spoken), default=0)
    return longest <= limit, f"longest reply {longest} words (limit {limit})"


def _no_markdown(record: CallRecord, params: dict[str, Any], ctx: CheckContext) -> tuple[bool, str]:
    for text in record.spoken:
        found = _MARKDOWN.search(text) or _EMOJI.search(text)
        if found:
            return False, f"markup in speech: {found.group(0).strip()!r}"
    return True, "plain speech"


_CHECKS: dict[str, Callable[[CallRecord, dict[str, Any], CheckContext], tuple[bool, str]]] = {
    "answered": _answered,
    "emergency_paged": _emergency_paged,
    "fits_speech": _fits_speech,
    "must_not_say": _must_not_say,
    "must_say": _must_say,
    "no_markdown": _no_markdown,
    "no_other_tenant": _no_other_tenant,
    "no_ticket": _no_ticket,
    "no_transfer": _no_transfer,
    "office_handoff": _office_handoff,
    "ticket": _ticket,
    "transfer": _transfer,
}


def run_check(spec: CheckSpec, record: CallRecord, ctx: CheckContext) -> CheckResult:
    """Judge `record` by one check; a call that broke (`record.error`) fails every check."""
    if record.error:
        return CheckResult(spec.name, False, f"the call broke: {record.error}")
    passed, detail = _CHECKS[spec.name](record, spec.params, ctx)
    return CheckResult(spec.name, passed, detail)
