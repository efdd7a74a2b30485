"""`run_prompt` fits the prompt to the model's window as a VAPI turn is fitted, and refuses what cannot fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.types import TextContent

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core import InputError, estimate_tokens
from pete_mcp.core.models import ModelRegistry, ModelSpec, Route
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import ChatTurn, build_core
from pete_mcp.ops import ModelTokenizer, fit_turn
from pete_mcp.routing.providers.openai_compatible import OpenAICompatibleProvider
from tests.support.mcp import connect, open_core

pytestmark = pytest.mark.anyio


async def test_a_prompt_larger_than_the_window_is_refused_naming_the_window(tmp_path: Path, openai_standin, era):
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        result = await client.call_tool("run_prompt", {"prompt": "rent is due on the first. " * 400})
    block = result.content[0]
    assert result.is_error and isinstance(block, TextContent)
    assert "jamie's window is 2,048 with 256 reserved for the reply" in block.text
    assert "tokens" in block.text and "list_models" in block.text
    assert openai_standin.requests == []  # nothing was sent to the model


async def test_max_tokens_is_the_room_reserved_for_the_reply(tmp_path: Path, openai_standin):
    async with open_core(tmp_path, openai_standin) as core, connect(core, "auto") as client:
        result = await client.call_tool("run_prompt", {"prompt": "rent " * 1000, "max_tokens": 1000, "model": "jamie"})
    assert result.is_error and "with 1,000 reserved" in result.content[0].text  # type: ignore[union-attr]


async def test_a_long_exchange_keeps_the_newest_turns_that_fit_and_the_system_prompt(
    tmp_path: Path, openai_standin, era
):
    turns: list[dict[str, Any]] = [{"role": "system", "content": "You are Jamie."}]
    for i in range(12):
        turns.append({"role": "user", "content": f"question {i} " + "x" * 1500})
        turns.append({"role": "assistant", "content": f"answer {i} " + "y" * 1500})
    turns.append({"role": "user", "content": "and the last question?"})
    async with open_core(tmp_path, openai_standin) as core, connect(core, era) as client:
        result = await client.call_tool("run_prompt", {"messages": turns, "max_tokens": 16})
    assert not result.is_error
    sent = openai_standin.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "You are Jamie."}
    assert sent[-1]["content"] == "and the last question?"
    assert 3 < len(sent) < len(turns)  # older turns were dropped, whole
    kept = sent[1:]
    assert turns[-len(kept) :] == kept  # the newest ones, in order
    assert sum(estimate_tokens(m) for m in sent) <= 2048 - 16


@pytest.mark.slow
async def test_the_local_model_servers_tokenizer_counts_the_prompt(tmp_path: Path, model_server: Any):
    async with httpx.AsyncClient(timeout=30) as http:
        tokenizer = ModelTokenizer(http, model_server.url)
        count = await tokenizer.count(model_server.chat_model, "When is rent due this month?")
        missing = await ModelTokenizer(http, "http://127.0.0.1:9").count(model_server.chat_model, "hi")
        spec = ModelSpec("smollm2", (Route("local", model_server.chat_model),), 64, "tiny window", None)
        provider = OpenAICompatibleProvider("local", http, base_url=f"{model_server.url}/v1", api_key="")
        settings = Settings(data_dir=tmp_path)  # pyright: ignore[reportCallIssue]
        core = build_core(
            settings, http=http, providers={"local": provider}, registry=ModelRegistry({"smollm2": spec}, "smollm2")
        )
        long_turn = ChatTurn([Message(role="user", content="rent " * 60)], options=ChatOptions(max_tokens=8))
        async with core:
            with pytest.raises(InputError, match=r"~\d+ tokens; smollm2's window is 64 with 8 reserved"):
                await fit_turn(core, long_turn, tokenizer=tokenizer)
    assert isinstance(count, int) and 4 <= count <= 12  # SmolLM2's own BPE, not the byte estimate
    assert missing is None  # nothing listening: the caller falls back to the estimate
