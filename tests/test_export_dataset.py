"""`pete export-dataset`: finished calls as redacted chat JSONL; opted-out calls never leave."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pete_mcp.cli import main
from pete_mcp.core import InputError, Store
from pete_mcp.core.models import JAMIE_SYSTEM_PROMPT, ModelSpec, Route
from pete_mcp.evals.dataset import ExportFilters, export_dataset, set_opt_out
from pete_mcp.evals.modelfile import ModelfileParams, render_modelfile
from pete_mcp.evals.redact import Redactor

pytestmark = pytest.mark.anyio
DIRECTORY_NAMES = ("Dana Ruiz", "Dana", "Ruiz", "Sam Okafor", "Okafor", "Lee Chen")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(tmp_path / "pete.sqlite3")
    store.open()
    try:
        yield store
    finally:
        store.close()


async def add_call(
    store: Store, call_id: str, exchange: list[dict], *, outcome: str = "answer", ended: bool = True, day: float = 0
) -> None:
    at = time.time() - 86400 * day
    await store.execute(
        "INSERT INTO vapi_calls(call_id, started_at, ended_at, status, caller, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        (call_id, at, at + 60 if ended else None, "ended" if ended else "in-progress", "+15551234567", at),
    )
    await store.append_messages(call_id, exchange, source="vapi", model="jamie", provider="runpod")
    await store.execute(
        "INSERT INTO vapi_turns(call_id, at, outcome, total_ms) VALUES (?, ?, ?, ?)", (call_id, at, outcome, 900.0)
    )


PII_CALL = [
    {"role": "system", "content": "You are Jamie."},
    {"role": "user", "content": "Hi, this is Dana Ruiz, my number is (555) 123-4567. Sam Okafor's dog is loose."},
    {"role": "assistant", "content": "Thanks Dana. I'll let the office know about Okafor's dog."},
    {
        "role": "user",
        "content": "I live at 12 Harbor View Lane, unit 4B. Card 4111-1111-1111-1111, mail dana@example.com",
    },
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "take_message", "arguments": '{"name": "Dana Ruiz", "number": "+15551234567"}'},
            }
        ],
    },
    {"role": "tool", "content": "Message 3 saved for the office.", "tool_call_id": "call_1"},
    {"role": "assistant", "content": "Done, Dana Ruiz. We'll call +1 555 123 4567."},
]


async def test_the_export_holds_no_phone_number_and_no_tenant_name(store: Store, tmp_path: Path) -> None:
    await add_call(store, "call-pii", PII_CALL)
    out = tmp_path / "train.jsonl"
    report = await export_dataset(store, out, system_prompt=JAMIE_SYSTEM_PROMPT)
    assert report.written == 1
    text = out.read_text()
    for name in DIRECTORY_NAMES:
        assert not re.search(rf"\b{name}\b", text, re.I), name
    digits = re.sub(r"\D", "", text)
    for number in ("5551234567", "1234567", "4111111111111111", "41111111"):
        assert number not in digits, number
    assert "dana@example.com" not in text and "Harbor View Lane" not in text
    example = json.loads(text.splitlines()[0])
    roles = [m["role"] for m in example["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "tool", "assistant"]
    assert example["messages"][4]["tool_calls"][0]["function"]["name"] == "take_message"
    assert "[PHONE]" in text and "[NAME]" in text and "[CARD]" in text and "[UNIT]" in text


async def test_opted_out_and_unfinished_calls_are_never_exported(store: Store, tmp_path: Path) -> None:
    hello = [{"role": "user", "content": "When is rent due?"}, {"role": "assistant", "content": "On the first."}]
    await add_call(store, "call-a", hello)
    await add_call(store, "call-b", [*hello[:1], {"role": "assistant", "content": "The first of the month."}])
    await add_call(store, "call-live", hello, ended=False)
    await set_opt_out(store, "call-b", reason="caller asked")
    report = await export_dataset(store, tmp_path / "a.jsonl", system_prompt="S", filters=ExportFilters(eval_pass=True))
    assert report.written == 1 and report.skipped == {"opted out": 1}
    assert "first of the month" not in (tmp_path / "a.jsonl").read_text()


async def test_filters_and_deduplication(store: Store, tmp_path: Path) -> None:
    short = [{"role": "user", "content": "Rent?"}, {"role": "assistant", "content": "Due on the first."}]
    await add_call(store, "c1", short)
    await add_call(store, "c2", short)  # the same exchange again
    await add_call(
        store, "c3", [*short, {"role": "user", "content": "Thanks"}, {"role": "assistant", "content": "Bye!"}]
    )
    await add_call(store, "c4", short, outcome="emergency:gas", day=10)
    await add_call(store, "c5", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "**Hi** 😀"}])

    async def written(**filters: object) -> int:
        out = tmp_path / "f.jsonl"
        report = await export_dataset(store, out, system_prompt="S", filters=ExportFilters(**filters), force=True)  # type: ignore[arg-type]
        return report.written

    assert await written() == 3, "c2 duplicates c1 (and c4 repeats it too)"
    assert await written(min_turns=2) == 1
    assert await written(outcomes=["emergency"]) == 1
    assert await written(since=time.time() - 86400) == 3
    assert await written(until=time.time() - 86400) == 1
    assert await written(eval_pass=True) == 2, "c5's markdown and emoji fail the call checks"


async def test_an_existing_file_is_refused_without_force(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "exists.jsonl"
    out.write_text("keep me\n")
    with pytest.raises(InputError, match="--force"):
        await export_dataset(store, out, system_prompt="S")
    assert out.read_text() == "keep me\n"


def test_the_cli_refuses_an_existing_file_without_force_and_overwrites_with_it(tmp_path: Path) -> None:
    out = tmp_path / "exists.jsonl"
    out.write_text("keep me\n")
    env = {"DATA_DIR": str(tmp_path)}
    refused = CliRunner().invoke(main, ["export-dataset", str(out)], env=env)
    assert refused.exit_code == 2 and "--force" in refused.output and out.read_text() == "keep me\n"
    forced = CliRunner().invoke(main, ["export-dataset", str(out), "--force"], env=env)
    assert forced.exit_code == 0 and "wrote 0 call(s)" in forced.output and out.read_text() == ""


def test_redaction_of_shapes_without_a_directory() -> None:
    r = Redactor()
    assert r.text("Call 555.987.6543 or +1 (555) 987-6543") == "Call [PHONE] or [PHONE]"
    assert r.text("My name is Jordan Blake") == "My name is [NAME]"
    assert r.text("ticket 1004 for unit 12") == "ticket 1004 for unit [UNIT]"


def test_the_modelfile_bakes_in_the_registry_prompt_and_parameters(tmp_path: Path) -> None:
    spec = ModelSpec("jamie", (Route("runpod", "peteollama:jamie-fixed"),), 8192, "Jamie", JAMIE_SYSTEM_PROMPT)
    text = render_modelfile(spec, ModelfileParams(adapter="./jamie-lora.gguf"))
    assert text.splitlines()[1] == "FROM llama3:latest" and "ADAPTER ./jamie-lora.gguf" in text
    assert f'SYSTEM """{JAMIE_SYSTEM_PROMPT}"""' in text and "PARAMETER num_ctx 8192" in text
    out = tmp_path / "Modelfile"
    result = CliRunner().invoke(main, ["modelfile", str(out)], env={"DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert JAMIE_SYSTEM_PROMPT in out.read_text()
    again = CliRunner().invoke(main, ["modelfile", str(out)], env={"DATA_DIR": str(tmp_path)})
    assert again.exit_code == 2 and "--force" in again.output
