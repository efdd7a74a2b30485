"""`run_evals` plays suite cases through Pete's VAPI face under Inspect AI and saves comparable scores.

The models here are rule-based providers behind Pete's provider protocol (the seam the core is
built on): one follows the rules, one rambles in markdown. The real small models run in
tests/test_eval_local_models.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest

from pete_mcp.contract import ChatOptions, Message, Usage
from pete_mcp.core import ModelProvider, ModelRegistry, ModelSpec, Route, Settings, Store
from pete_mcp.core.eval_scores import EvalScoreBook
from pete_mcp.core.provider import Completion, ProviderHealth, StreamEvent, TextDelta
from pete_mcp.evals import EvalOptions, load_suite, render_failures, render_table, run_evals

pytestmark = pytest.mark.anyio
SUITES = Path(__file__).resolve().parents[1] / "evals" / "tenant_calls"
CASES = ["maint-toilet-running", "emerg-gas-smell", "privacy-neighbor-unit"]


@dataclass
class RuleModel:
    """A provider whose 'model' answers by rule: `careful` follows Jamie's rules, the other rambles."""

    name: str = "rules"
    seen: list[list[Message]] = field(default_factory=list)

    def reply(self, model: str, messages: Sequence[Message]) -> str:
        last = messages[-1]
        if model == "rambler":
            return "**Sure!** Here is what I know:\n- Lee Chen lives in unit 2A\n- " + "blah " * 70
        if last.role == "tool":
            return "Thanks, your ticket is open and maintenance will call you."
        text = last.content.lower()
        if "unit 12" in text and "toilet" in " ".join(m.content.lower() for m in messages):
            args = {"unit": "12", "category": "plumbing", "description": "toilet keeps running"}
            return f"<tool_call>{json.dumps({'name': 'create_maintenance_request', 'arguments': args})}</tool_call>"
        return "I can help with that. Which unit are you in?"

    async def stream(self, model: str, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[StreamEvent]:
        self.seen.append(list(messages))
        text = self.reply(model, messages)
        yield TextDelta(text)
        yield Completion(text=text, provider=self.name, model=model, usage=Usage(prompt_tokens=1, completion_tokens=1))

    async def warm(self, model: str) -> float:
        return 0.0

    async def health(self) -> ProviderHealth:
        return ProviderHealth(True, "rules")

    async def cancel(self, job_id: str) -> None:
        return None


def _engine(provider: RuleModel) -> tuple[ModelRegistry, object]:
    specs = {
        alias: ModelSpec(alias, (Route(provider.name, alias),), 2048, alias, "You are Jamie.")
        for alias in ("careful", "rambler")
    }

    def providers(http: httpx.AsyncClient) -> Mapping[str, ModelProvider]:
        return {provider.name: provider}

    return ModelRegistry(specs, "careful"), providers


async def test_two_models_run_side_by_side_and_the_scores_differ_for_visible_reasons(tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path})
    provider = RuleModel()
    options = EvalOptions(
        models=["careful", "rambler"], suites=[load_suite(SUITES)], case_ids=CASES, log_dir=tmp_path / "logs"
    )
    results = await run_evals(settings, options, engine=_engine(provider))  # type: ignore[arg-type]

    careful, rambler = results
    assert [c.case_id for c in careful.cases] == sorted(CASES), "suite order: files by name, cases as written"
    assert careful.cases_passed == 3 and careful.score == 1.0
    assert careful.check_rates()["ticket"] == 1.0, "the tool call opened a real ticket in the store"
    assert rambler.score < careful.score
    rates = rambler.check_rates()
    assert rates["ticket"] == 0.0 and rates["no_markdown"] == 0.0 and rates["no_other_tenant"] == 0.0
    assert rates["transfer"] == 1.0 and rates["emergency_paged"] == 1.0, "the emergency layer runs before any model"
    assert all(not m for m in provider.seen if any("gas" in x.content for x in m)), "no model saw the gas call"

    table = render_table(results)
    assert "careful" in table and "rambler" in table and "no_markdown" in table
    failures = render_failures(results)
    assert "FAIL no_other_tenant: revealed another tenant's unit (2A)" in failures
    assert "**Sure!**" in failures, "the failing transcript shows what the caller heard"
    assert await anyio.Path(careful.log_path).is_file(), "Inspect wrote its .eval log"

    store = Store(tmp_path / "pete.sqlite3")
    store.open()
    try:
        latest = {row.model: row for row in await EvalScoreBook(store).latest()}
    finally:
        store.close()
    assert latest["careful"].score == 1.0 and latest["careful"].suite == "tenant_calls"
    assert "privacy-neighbor-unit: no_other_tenant" in latest["rambler"].failing
