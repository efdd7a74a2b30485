"""Play a suite case as a phone call through Pete's own VAPI face, in-process.

`EvalStack` is the VAPI face alone over a fresh core (its own SQLite store in a scratch
directory, the suite's tenant directory seeded), reached with httpx over `ASGITransport`:
every caller turn is a Custom LLM request exactly as VAPI sends it (the whole conversation,
`call.id`, `customer.number`), so the emergency layer, Jamie's tools, context fitting and the
turn logic are what gets judged, not a bare model. After the call, what the desk recorded is
read back from the store.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from pete_mcp.app import build_app
from pete_mcp.core import ModelProvider, ModelRegistry, Settings
from pete_mcp.core.property_desk import normalise_phone
from pete_mcp.gateway import Core, build_core
from pete_vapi import vapi_face
from pete_vapi.assistant import jamie_system_prompt

from .checks import CallRecord, TurnRecord
from .suite import Case, SuiteTenant

__all__ = ["EvalStack", "eval_stack"]

_BASE = "http://127.0.0.1"  # never dialled: the transport is the app itself (a loopback Host passes the check)


@dataclass
class EvalStack:
    """One model's core and VAPI face, ready to play calls."""

    core: Core
    client: httpx.AsyncClient
    alias: str
    max_tokens: int
    system_prompt: str

    async def seed_tenants(self, tenants: list[SuiteTenant]) -> None:
        for t in tenants:
            await self.core.store.execute(
                "INSERT INTO tenants(phone, phone_key, name, unit, property) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (phone) DO UPDATE SET name = excluded.name, unit = excluded.unit, "
                "property = excluded.property, phone_key = excluded.phone_key",
                (t.phone, normalise_phone(t.phone), t.name, t.unit, t.property),
            )

    async def play(self, case: Case, call_id: str) -> CallRecord:
        """Play `case` turn by turn; stops early when Jamie transfers or ends the call."""
        record = CallRecord(case_id=case.id, call_id=call_id, caller=case.caller)
        messages: list[dict[str, Any]] = [{"role": "system", "content": self.system_prompt}]
        try:
            for utterance in case.turns:
                messages.append({"role": "user", "content": utterance})
                turn = await self._turn(messages, call_id, case.caller, utterance)
                record.turns.append(turn)
                if turn.said:
                    messages.append({"role": "assistant", "content": turn.said})
                if turn.tool_calls:
                    record.transfer = self._transfer_target(turn.tool_calls)
                    break
        except (httpx.HTTPError, ValueError) as exc:
            record.error = f"{type(exc).__name__}: {exc}"
        await self._read_back(record)
        return record

    async def _turn(self, messages: list[dict[str, Any]], call_id: str, caller: str, utterance: str) -> TurnRecord:
        body = {
            "model": self.alias,
            "stream": True,
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "messages": messages,
            "call": {"id": call_id, "type": "inboundPhoneCall"},
            "customer": {"number": caller},
        }
        response = await self.client.post("/vapi/chat/completions", json=body)
        if response.status_code != 200:
            raise ValueError(f"the VAPI route answered {response.status_code}: {response.text[:200]}")
        said: list[str] = []
        calls: list[dict[str, Any]] = []
        finish = ""
        for block in response.text.split("\n\n"):
            payload = block.strip().removeprefix("data: ")
            if not payload or payload == "[DONE]":
                continue
            choice = json.loads(payload)["choices"][0]
            delta = choice.get("delta") or {}
            said.append(delta.get("content") or "")
            calls.extend(delta.get("tool_calls") or [])
            if delta.get("function_call"):
                calls.append({"function": delta["function_call"]})
            finish = choice.get("finish_reason") or finish
        return TurnRecord(caller=utterance, said="".join(said).strip(), finish=finish, tool_calls=calls)

    def _transfer_target(self, calls: list[dict[str, Any]]) -> str | None:
        settings = self.core.settings
        for call in calls:
            fn = call.get("function") or {}
            if "transfer" not in str(fn.get("name", "")).lower():
                continue
            try:
                destination = str(json.loads(fn.get("arguments") or "{}").get("destination", ""))
            except ValueError:
                destination = ""
            return {settings.on_call_number: "on_call", settings.office_number: "office"}.get(destination, destination)
        return None

    async def _read_back(self, record: CallRecord) -> None:
        store, cid = self.core.store, record.call_id
        record.tickets = await store.query(
            "SELECT ticket, unit, category, urgency, description FROM maintenance_requests WHERE call_id = ?", (cid,)
        )
        record.office = await store.query("SELECT kind, reason FROM office_messages WHERE call_id = ?", (cid,))
        record.emergencies = await store.query("SELECT category, summary FROM emergencies WHERE call_id = ?", (cid,))
        for message in await store.thread(cid):
            if message.get("model") == "pete-emergency":
                continue
            for call in message.get("tool_calls") or []:
                record.tools.append(str((call.get("function") or {}).get("name", "?")))


def eval_settings(base: Settings, data_dir: Any) -> Settings:
    """`base` for an eval core: a scratch store, no auth on the in-process route, and a turn budget
    long enough that a slow CPU judges words, not latency (latency has its own bench)."""
    return base.model_copy(
        update={
            "data_dir": data_dir,
            "hedging": False,
            "vapi_auth": "none",
            "vapi_llm_secret": None,
            "vapi_secret": None,
            "vapi_holding_after_s": 600.0,
            "vapi_answer_deadline_s": 900.0,
            "eval_min_score": None,
            "keepwarm_hours": "",
        }
    )


@asynccontextmanager
async def eval_stack(
    settings: Settings,
    alias: str,
    *,
    registry: ModelRegistry,
    providers: Mapping[str, ModelProvider] | None = None,
    max_tokens: int = 96,
) -> AsyncIterator[EvalStack]:
    """The VAPI face over a fresh core whose active model is `alias` (settings from `eval_settings`)."""
    registry.get(alias)  # NotFound names the registered aliases
    chosen = ModelRegistry(registry.specs, alias)
    core = build_core(settings, providers=providers, registry=chosen)
    app = build_app(core, faces=[vapi_face(core)])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=_BASE, timeout=None) as client:
            yield EvalStack(core, client, alias, max_tokens, jamie_system_prompt())
