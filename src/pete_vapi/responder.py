"""One Custom LLM turn, from VAPI's request to what Jamie says.

Order of work: store what is new in the resent conversation (the thread of `call.id`), run
the emergency layer on the caller's newest words (no model hop), then ask the core under the
turn budget, running any tool the model asks for and asking again with its result. Whatever
happens, the sink gets a well-formed ending: an answer, a transfer, or a spoken apology with a
callback promise (and a callback recorded, so the promise is kept). On a disconnect
(barge-in) the upstream job is cancelled and what was already said is stored.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.models import ModelSpec
from pete_mcp.core.property_desk import PropertyDesk
from pete_mcp.gateway import ChatTurn, Core

from . import control
from .background import Background
from .calls import CallBook
from .chunks import ReplySink
from .emergency import Hazard, detect_hazard
from .escalation import EscalationOutcome, Escalator
from .redact import mask_number
from .tool_protocol import ParsedCall, SpokenText, ToolCallScanner
from .tools import BUILTIN_END, BUILTIN_TRANSFER, JamieTools, ToolContext, builtin_name
from .turn import RoundResult, TurnBudget, TurnClock, run_round
from .wire import ChatCompletionRequest

__all__ = ["Responder", "TurnSettings", "turn_options"]

log = logging.getLogger(__name__)

GATEWAY = "gateway"  # provider recorded for what the gateway itself said
MAX_TOOL_ROUNDS = 2
REPEAT_PLEASE = "Sorry, could you say that again?"
CLEANUP_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class TurnSettings:
    """The spoken texts and numbers a turn uses (from `Settings`)."""

    holding_phrase: str
    apology: str
    on_call_number: str
    office_number: str


@dataclass
class _Turn:
    request: ChatCompletionRequest
    conversation_id: str
    spec: ModelSpec
    clock: TurnClock
    options: ChatOptions
    job_ids: list[str] = field(default_factory=list)  # upstream jobs of the round under way
    first_job: str | None = None
    round_spoken: list[str] = field(default_factory=list)  # model text spoken in the round under way
    round_open: bool = False
    outcome: str = "answer"
    tenant_number: str | None = None  # a new call's number, to name its tenant on the board after the reply

    @property
    def call_id(self) -> str | None:
        return self.request.call_id

    def job_started(self, job_id: str) -> None:
        self.job_ids.append(job_id)
        self.first_job = self.first_job or job_id

    @property
    def tool_context(self) -> ToolContext:
        return ToolContext(self.conversation_id, self.request.caller_number)


def turn_options(request: ChatCompletionRequest) -> ChatOptions:
    """The sampling options of a request, clamped to what the job contract accepts.

    Raises:
        ValidationError: a value no clamp can fix (the Custom LLM route checks before streaming).
    """
    stop = [request.stop] if isinstance(request.stop, str) else request.stop
    temperature = None if request.temperature is None else min(max(request.temperature, 0.0), 2.0)
    max_tokens = None if request.max_tokens is None else min(max(request.max_tokens, 1), 32768)
    return ChatOptions(temperature=temperature, max_tokens=max_tokens, seed=request.seed, stop=stop or None)


def _call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def _latest_user_text(messages: list[Message]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.content
    return ""


class Responder:
    def __init__(
        self,
        core: Core,
        *,
        calls: CallBook,
        background: Background,
        budget: TurnBudget,
        texts: TurnSettings,
        escalator: Escalator | None = None,
        on_call_start: Callable[[], object] | None = None,
    ) -> None:
        self.on_call_start = on_call_start  # a call's first turn: warm the endpoint for the rest
        self.core = core
        self.calls = calls
        self.background = background
        self.budget = budget
        self.texts = texts
        self.desk = PropertyDesk(core.store)
        self.escalator = escalator or Escalator(self.desk, None, background)
        self.tools = JamieTools(self.desk, escalator=self.escalator)

    async def respond(self, request: ChatCompletionRequest, options: ChatOptions, sink: ReplySink) -> None:
        """Answer one turn into `sink` with `options` (`turn_options(request)`); always finishes it,
        even when something breaks."""
        turn = _Turn(
            request=request,
            conversation_id=request.call_id or f"vapi-{uuid.uuid4().hex[:12]}",
            spec=self.core.active,
            clock=TurnClock(self.budget),
            options=options,
        )
        try:
            if self.calls.touch(turn.call_id, source="custom-llm") and turn.call_id:
                if self.on_call_start is not None:
                    self.on_call_start()
                self._show_caller(turn)
            incoming = [m for m in (w.to_message() for w in request.messages) if m is not None]
            new = await self.core.conversations.sync(turn.conversation_id, incoming, source="vapi")
            heard = _latest_user_text(new)
            if turn.call_id:
                self.core.calls.said(turn.call_id, "caller", heard)
                self.core.calls.set_state(turn.call_id, "answering")
            hazard = detect_hazard(heard)
            if hazard is not None:
                await self._emergency(turn, hazard, sink)
            else:
                await self._answer(turn, sink)
        except Exception:
            log.exception("VAPI turn for call %s failed; apologising", turn.conversation_id)
            if not sink.finished:
                await self._apologise(turn, sink, reason="error")
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT_S):
                await self._settle(turn, sink)

    # --- the model path --------------------------------------------------------------------
    async def _answer(self, turn: _Turn, sink: ReplySink) -> None:
        for round_no in range(MAX_TOOL_ROUNDS + 1):
            scanner = ToolCallScanner()
            calls: list[ParsedCall] = []

            async def on_text(delta: str, scanner: ToolCallScanner = scanner, calls: list[ParsedCall] = calls) -> None:
                await self._emit(turn, sink, scanner.feed(delta), calls)

            async def on_late() -> None:
                await self._hold(turn, sink)

            turn.round_spoken, turn.round_open = [], True
            result = await run_round(
                self.core.chat(ChatTurn([], conversation_id=turn.conversation_id, options=turn.options, source="vapi")),
                turn.clock,
                on_text=on_text,
                on_late=on_late,
                on_job=turn.job_started,
            )
            if result.outcome != "done":
                await self._give_up(turn, sink, result)
                return
            await self._emit(turn, sink, scanner.close(), calls)
            turn.round_open = False  # the core stored the reply
            turn.job_ids.clear()
            if not calls:
                break
            if await self._builtin(turn, sink, calls):
                return
            if round_no == MAX_TOOL_ROUNDS:
                break
            await self._run_tools(turn, sink, calls)
        if not sink.spoken.strip():
            await self._say(turn, sink, REPEAT_PLEASE, answer=True, persist=True)
        turn.outcome = "held-answer" if turn.clock.held else "answer"
        await sink.finish("stop")

    async def _emit(
        self, turn: _Turn, sink: ReplySink, items: list[SpokenText | ParsedCall], calls: list[ParsedCall]
    ) -> None:
        for item in items:
            if isinstance(item, ParsedCall):
                calls.append(item)
            elif item.text:
                turn.round_spoken.append(item.text)
                await self._say(turn, sink, item.text, answer=True)

    async def _say(self, turn: _Turn, sink: ReplySink, text: str, *, answer: bool, persist: bool = False) -> None:
        await sink.content(text)
        turn.clock.spoken(answer=answer)
        if persist:
            await self.core.conversations.record_reply(
                turn.conversation_id, text, source="vapi", model="pete-vapi", provider=GATEWAY
            )

    async def _hold(self, turn: _Turn, sink: ReplySink) -> None:
        """The first token is late: say the holding phrase once (control URL, else in the stream)."""
        phrase = self.texts.holding_phrase
        url = turn.request.control_url
        if url and self.background.start_soon(control.say, self.core.http, url, phrase, name="holding phrase"):
            turn.clock.spoken(answer=False)
        else:
            await self._say(turn, sink, phrase + " ", answer=False)
        await self.core.conversations.record_reply(
            turn.conversation_id, phrase, source="vapi", model="pete-vapi", provider=GATEWAY
        )

    async def _run_tools(self, turn: _Turn, sink: ReplySink, calls: list[ParsedCall]) -> None:
        """Run the model's tool calls and store them as an OpenAI tool-call exchange for the next round."""
        ids = [f"call_{uuid.uuid4().hex[:12]}" for _ in calls]
        exchange: list[dict[str, Any]] = [
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                    for i, c in zip(ids, calls, strict=True)
                ],
            }
        ]
        for call_id, call in zip(ids, calls, strict=True):
            outcome = await self.tools.run(call.name, call.arguments, turn.tool_context)
            status = "ok" if outcome.error is None else "error"
            log.info("call %s: tool %s → %s", turn.conversation_id, call.name, status)
            exchange.append({"role": "tool", "content": outcome.text, "tool_call_id": call_id})
        await self.core.conversations.append(turn.conversation_id, exchange, source="vapi", provider=GATEWAY)

    async def _builtin(self, turn: _Turn, sink: ReplySink, calls: list[ParsedCall]) -> bool:
        """Handle transfer/end-call (and an emergency escalation); True when the turn is finished."""
        for call in calls:
            if call.name == "escalate_emergency":
                await self._transfer(turn, sink, self.texts.on_call_number)
                turn.outcome = "transfer"
                await self._escalate(
                    turn,
                    category=str(call.arguments.get("category") or "other"),
                    summary=str(call.arguments.get("summary") or call.arguments.get("description") or ""),
                    said="",
                )
                return True
            if call.name == BUILTIN_TRANSFER or "transfer" in call.name.lower():
                where = str(call.arguments.get("destination") or "").lower().replace("-", "_")
                urgent = where in ("on_call", "oncall", "emergency") or where == self.texts.on_call_number
                await self._transfer(turn, sink, self.texts.on_call_number if urgent else self.texts.office_number)
                turn.outcome = "transfer"
                return True
            if call.name == BUILTIN_END or call.name.lower().replace("_", "") in ("endcall", "hangup"):
                if not sink.spoken.strip():
                    await self._say(turn, sink, "Thanks for calling. Goodbye!", answer=True, persist=True)
                await sink.tool_call(builtin_name(turn.request.tools, BUILTIN_END), {})
                await sink.finish("tool_calls")
                turn.outcome = "end-call"
                return True
        return False

    async def _transfer(self, turn: _Turn, sink: ReplySink, number: str) -> None:
        """Transfer: a tool-call delta with no content, or through the control URL once text was spoken."""
        url = turn.request.control_url
        if sink.spoken.strip() and url:
            self.background.start_soon(control.transfer, self.core.http, url, number, name="transfer")
            await sink.finish("stop")
            return
        await sink.tool_call(builtin_name(turn.request.tools, BUILTIN_TRANSFER), {"destination": number})
        await sink.finish("tool_calls")

    # --- the emergency path ----------------------------------------------------------------
    def _show_caller(self, turn: _Turn) -> None:
        """Put the caller (masked) on the operator's call board now; their unit, when the number is a
        tenant's, once the first reply is out (`_settle`): a store read no caller should wait for,
        and at 32 calls starting at once, work every other first token would queue behind."""
        assert turn.call_id is not None
        number = turn.request.caller_number
        self.core.calls.started(turn.call_id, caller=mask_number(number) if number else "", source="vapi")
        turn.tenant_number = number

    async def _show_tenant(self, call_id: str, number: str) -> None:
        try:
            found = await self.desk.lookup_tenant(number)
        except Exception:
            log.exception("tenant lookup for the call board failed")
            return
        if found and self.calls.is_live(call_id):
            self.core.calls.started(call_id, source="vapi", tenant=f"unit {found.unit}, {found.property}")

    async def _emergency(self, turn: _Turn, hazard: Hazard, sink: ReplySink) -> None:
        """Transfer at once, then record and page; the words about the page wait for its outcome."""
        turn.outcome = f"emergency:{hazard.category}"
        if turn.call_id:
            self.core.calls.set_state(turn.call_id, "transferring")
        log.warning("emergency (%s) on call %s: matched %r", hazard.category, turn.conversation_id, hazard.matched)
        url = turn.request.control_url
        if url:
            self.background.start_soon(control.say, self.core.http, url, hazard.instruction, name="safety instruction")
        await self._transfer_now(turn, sink)
        self.core.events.publish("emergency.escalated", call_id=turn.conversation_id, category=hazard.category)
        summary = _latest_user_text([m for m in (w.to_message() for w in turn.request.messages) if m])
        await self._escalate(turn, category=hazard.category, summary=summary, said=hazard.instruction if url else "")

    async def _transfer_now(self, turn: _Turn, sink: ReplySink) -> None:
        arguments = {"destination": self.texts.on_call_number}
        await sink.tool_call(builtin_name(turn.request.tools, BUILTIN_TRANSFER), arguments)
        await sink.finish("tool_calls")

    async def _escalate(self, turn: _Turn, *, category: str, summary: str, said: str) -> None:
        """Record the emergency now; page and speak in the background, so the transfer never waits."""
        try:
            details = await self.escalator.record(
                call_id=turn.conversation_id,
                category=category,
                summary=summary,
                callback_number=turn.request.caller_number or "",
            )
        except Exception:
            log.exception("could not record the emergency on call %s", turn.conversation_id)
            return

        async def page_and_tell() -> None:
            outcome = await self.escalator.page(details)
            await self._tell(turn, outcome, said)

        if not self.background.start_soon(page_and_tell, name=f"page on-call for {turn.conversation_id}"):
            await page_and_tell()

    async def _tell(self, turn: _Turn, outcome: EscalationOutcome, said: str) -> None:
        """Say the truth about the page (through the control URL) and keep it in the thread."""
        url = turn.request.control_url
        if url:
            await control.say(self.core.http, url, outcome.spoken)
        spoken = f"{said} {outcome.spoken}".strip() if url else ""
        name = builtin_name(turn.request.tools, BUILTIN_TRANSFER)
        escalate_id, transfer_id = f"call_{uuid.uuid4().hex[:12]}", f"call_{uuid.uuid4().hex[:12]}"
        await self.core.conversations.append(
            turn.conversation_id,
            [
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [_call(escalate_id, "escalate_emergency", {"emergency": outcome.emergency_id})],
                },
                {"role": "tool", "content": outcome.tool_result, "tool_call_id": escalate_id},
                {
                    "role": "assistant",
                    "content": spoken,
                    "tool_calls": [_call(transfer_id, name, {"destination": self.texts.on_call_number})],
                },
            ],
            source="vapi",
            model="pete-emergency",
            provider=GATEWAY,
        )

    # --- endings ---------------------------------------------------------------------------
    async def _give_up(self, turn: _Turn, sink: ReplySink, result: RoundResult) -> None:
        await self._store_partial(turn)
        turn.outcome = {"late": "late-apology", "stalled": "stall-apology"}.get(result.outcome, "error-apology")
        self._cancel_jobs(turn)
        await self._apologise(turn, sink, reason=result.outcome)

    async def _apologise(self, turn: _Turn, sink: ReplySink, *, reason: str) -> None:
        text = self.texts.apology
        if sink.spoken.strip() and not sink.spoken[-1].isspace():
            text = " " + text
        await self._say(turn, sink, text, answer=False)
        await sink.finish("stop")
        if turn.outcome == "answer":
            turn.outcome = "error-apology"
        try:
            await self.core.conversations.record_reply(
                turn.conversation_id, text.strip(), source="vapi", model="pete-vapi", provider=GATEWAY
            )
            caller = turn.request.caller_number
            if caller:
                await self.desk.schedule_callback(
                    call_id=turn.conversation_id,
                    name="",
                    number=caller,
                    reason=f"Jamie could not answer in time ({reason}); please call the tenant back.",
                )
        except Exception:
            log.exception("could not record the apology on call %s", turn.conversation_id)

    async def _store_partial(self, turn: _Turn, *, unsent: str = "") -> None:
        """Keep what the caller already heard of a reply the core never finished (less `unsent`,
        the end of it that a hang-up kept from ever reaching VAPI)."""
        text = "".join(turn.round_spoken)
        if unsent and text.endswith(unsent):
            text = text[: len(text) - len(unsent)]
        if turn.round_open and text:
            route = turn.spec.primary
            await self.core.conversations.record_reply(
                turn.conversation_id,
                text,
                source="vapi",
                model=route.model,
                provider=route.provider,
            )
        turn.round_open = False

    def _cancel_jobs(self, turn: _Turn) -> None:
        for job_id in turn.job_ids:
            self.background.start_soon(self._cancel_job, turn.spec, job_id, name=f"cancel {job_id}")
        turn.job_ids.clear()

    async def _cancel_job(self, spec: ModelSpec, job_id: str) -> None:
        for name in dict.fromkeys(route.provider for route in self.core.router.routes(spec)):
            with anyio.move_on_after(CLEANUP_TIMEOUT_S):
                await self.core.router.provider(name).cancel(job_id)

    async def _settle(self, turn: _Turn, sink: ReplySink) -> None:
        """After the turn, whatever happened: store a cut-off reply, cancel its job, time the turn,
        and name a new call's tenant on the board."""
        said = sink.spoken
        if not sink.finished:  # cancelled (the caller hung up or barged in)
            turn.outcome = "interrupted"
            unsent = sink.unsent  # text that waited for a chunk boundary never reached VAPI
            said = said[: len(said) - len(unsent)]
            await self._store_partial(turn, unsent=unsent)
            for job_id in turn.job_ids:
                await self._cancel_job(turn.spec, job_id)
            turn.job_ids.clear()
        clock = turn.clock
        if turn.call_id:
            self.core.calls.said(turn.call_id, "assistant", said)
            if not turn.outcome.startswith("emergency"):
                ttft = None if clock.model_token_at is None else clock.model_token_at - clock.started
                self.core.calls.answered(turn.call_id, model=turn.spec.alias, ttft_s=ttft)
            await self.calls.record_turn(
                turn.call_id,
                outcome=turn.outcome,
                first_content_s=None if clock.spoke_at is None else clock.spoke_at - clock.started,
                model_ttft_s=None if clock.model_token_at is None else clock.model_token_at - clock.started,
                total_s=clock.elapsed(),
                held=clock.held,
                job_id=turn.first_job,
            )
            if turn.tenant_number:
                await self._show_tenant(turn.call_id, turn.tenant_number)
