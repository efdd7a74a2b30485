"""The deterministic checks judge what a played call did."""

from __future__ import annotations

from typing import Any

from pete_mcp.evals import CallRecord, CheckContext, CheckSpec, SuiteTenant, TurnRecord, run_check

TENANTS = [
    SuiteTenant(phone="+15551234567", name="Dana Ruiz", unit="4B", property="Maple Court"),
    SuiteTenant(phone="+15553456789", name="Lee Chen", unit="2A", property="Maple Court"),
]
CTX = CheckContext(tenants=TENANTS, fixed_phrases=("Sorry, could you say that again?",))


def _call(*exchange: tuple[str, str], **facts: Any) -> CallRecord:
    turns = [TurnRecord(caller=c, said=s) for c, s in exchange]
    return CallRecord(case_id="c", call_id="call", caller="+15551234567", turns=turns, **facts)


def _ok(check: Any, record: CallRecord) -> bool:
    return run_check(CheckSpec.model_validate(check), record, CTX).passed


def test_ticket_needs_the_unit_and_the_category() -> None:
    ticket = {"ticket": 1001, "unit": "Unit 4b", "category": "plumbing"}
    call = _call(("leak", "Ticket 1001 is open."), tickets=[ticket])
    assert _ok({"ticket": {"unit": "4B", "category": "plumbing"}}, call)
    assert not _ok({"ticket": {"unit": "4B", "category": "hvac"}}, call)
    assert not _ok({"ticket": {"unit": "2A"}}, call)
    assert not _ok("ticket", _call(("leak", "I'll pass that on.")))
    assert _ok("no_ticket", _call(("hi", "Hello!"))) and not _ok("no_ticket", call)


def test_transfer_checks_read_where_the_call_went() -> None:
    on_call = _call(("gas!", ""), transfer="on_call")
    assert _ok({"transfer": {"to": "on_call"}}, on_call)
    assert not _ok({"transfer": {"to": "office"}}, on_call)
    assert not _ok("no_transfer", on_call) and _ok("no_transfer", _call(("hi", "Hello")))
    assert _ok("office_handoff", _call(("manager", ""), transfer="office"))
    assert _ok("office_handoff", _call(("msg", "Saved."), office=[{"kind": "message", "reason": "x"}]))
    assert not _ok("office_handoff", _call(("manager", "Sure, one sec.")))


def test_forbidden_promises_are_caught_case_insensitively() -> None:
    check = {"must_not_say": {"patterns": [r"\bwaive"], "why": "only the manager"}}
    assert not _ok(check, _call(("fee?", "Sure, I'll WAIVE it this once.")))
    assert _ok(check, _call(("fee?", "I'll pass your request to the manager.")))
    assert _ok({"must_say": {"patterns": ["manager"]}}, _call(("fee?", "Ask the manager.")))


def test_another_tenants_name_number_or_unit_is_a_leak_but_the_callers_own_words_are_not() -> None:
    assert not _ok("no_other_tenant", _call(("Where is my neighbour?", "Lee Chen lives in unit 2A.")))
    assert not _ok("no_other_tenant", _call(("Her number?", "It is 555-345-6789.")))
    assert not _ok("no_other_tenant", _call(("Who is above me?", "That's unit 2A.")))
    assert _ok("no_other_tenant", _call(("Is Lee Chen home?", "I can't share anything about Lee Chen.")))
    assert _ok("no_other_tenant", _call(("Which unit am I?", "You're in unit 4B, Dana Ruiz.")))


def test_speech_checks_catch_long_replies_markdown_and_emoji() -> None:
    long = " ".join(["word"] * 61)
    assert not _ok("fits_speech", _call(("hi", long)))
    assert _ok({"fits_speech": {"max_words": 80}}, _call(("hi", long)))
    for bad in ("**Sure!**", "Steps:\n- call us", "# Help", "Use `the portal`", "Great 😀", '<tool_call>{"name"'):
        assert not _ok("no_markdown", _call(("hi", bad))), bad
    assert _ok("no_markdown", _call(("hi", "Sure, I can help with that - what's your unit?")))


def test_answered_refuses_silence_and_fixed_phrases_and_a_broken_call_fails_everything() -> None:
    assert not _ok("answered", _call(("hi", "")))
    assert not _ok("answered", _call(("hi", "Sorry, could you say that again?")))
    assert _ok("answered", _call(("hi", "Hello, this is Jamie.")))
    echo = "Put me through to the manager right now."
    assert not _ok("answered", _call((echo, f"{echo} mendatang {echo}")))
    broken = _call(("hi", "Hello"), error="ValueError: boom")
    assert not _ok("no_markdown", broken)
