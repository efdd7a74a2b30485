"""Sentence-sized chunking: the pure rules, and the time cap while the model is silent."""

from __future__ import annotations

import httpx
import pytest
from gpu_handler import JobHandler, WorkerConfig
from gpu_handler.backends import OllamaBackend
from gpu_handler.chunking import SentenceChunker

from pete_mcp.contract import ChatResult, StreamChunk
from tests.support.ollama_standin import RunningOllama


def feed(chunker: SentenceChunker, deltas: list[str], *, step_s: float = 0.001) -> list[str]:
    sent = [piece for i, delta in enumerate(deltas) if (piece := chunker.add(delta, i * step_s))]
    rest = chunker.flush()
    return [*sent, rest] if rest else sent


def test_the_first_text_goes_out_at_once() -> None:
    chunker = SentenceChunker(max_chars=48, max_delay_s=10)
    assert chunker.add("Hello", 0.0) == "Hello"


def test_blank_leading_deltas_wait_for_the_first_word() -> None:
    chunker = SentenceChunker(max_chars=48, max_delay_s=10)
    assert chunker.add(" ", 0.0) is None
    assert chunker.add("\n", 0.0) is None
    assert chunker.add("Hello", 0.0) == " \nHello"


def test_text_is_cut_at_sentence_ends() -> None:
    deltas = ["Hi", ".", " Rent", " is", " due", " on", " the", " first", ".", " Late", " fees", " apply", "!"]
    chunks = feed(SentenceChunker(max_chars=200, max_delay_s=10), deltas)
    assert chunks == ["Hi", ".", " Rent is due on the first.", " Late fees apply!"]


def test_a_boundary_inside_a_delta_keeps_the_rest_for_the_next_chunk() -> None:
    deltas = ["Yes", " it", " is. The", " office", " opens", " at", " nine", "."]
    chunks = feed(SentenceChunker(max_chars=200, max_delay_s=10), deltas)
    assert chunks == ["Yes", " it is. ", "The office opens at nine."]


def test_long_text_without_a_sentence_end_is_cut_at_max_chars() -> None:
    deltas = ["a", *([" word"] * 30)]
    chunks = feed(SentenceChunker(max_chars=20, max_delay_s=10), deltas)
    assert "".join(chunks) == "".join(deltas)
    assert all(len(c) <= 20 + len(" word") for c in chunks)
    assert len(chunks) > 5


def test_held_text_is_due_at_its_deadline() -> None:
    chunker = SentenceChunker(max_chars=200, max_delay_s=0.08)
    chunker.add("First", 0.0)
    assert chunker.deadline() is None
    assert chunker.add(" words", 1.0) is None
    assert chunker.deadline() == pytest.approx(1.08)
    assert chunker.due(1.05) is None
    assert chunker.due(1.08) == " words"
    assert chunker.deadline() is None


def test_nothing_is_lost_or_reordered() -> None:
    deltas = ["I", "'m", " Jamie", ".", "\n", "How", " can", " I", " help", "?", " Call", " 555", "-", "0100", "."]
    assert "".join(feed(SentenceChunker(max_chars=8, max_delay_s=0.002), deltas)) == "".join(deltas)


@pytest.mark.anyio
async def test_held_text_is_flushed_by_the_time_cap_while_the_model_is_silent(ollama_standin: RunningOllama) -> None:
    # Tokens arrive every 0.25 s; with a 0.02 s cap each one must go out alone, before the next
    # arrives, instead of waiting for a sentence end.
    ollama_standin.state.token_delay_s = 0.25
    config = WorkerConfig(model_url=ollama_standin.url, backend="ollama", chunk_chars=500, chunk_max_delay_s=0.02)
    async with httpx.AsyncClient() as http:
        handler = JobHandler(OllamaBackend(http, config.model_url), config)
        job = {"model": "llama3:latest", "messages": [{"role": "user", "content": "hi"}], "options": {"max_tokens": 5}}
        outputs = [o async for o in handler.handle({"id": "job-cap", "input": job})]

    chunks = [StreamChunk.model_validate(c).text for c in outputs[:-1]]
    assert chunks == ollama_standin.state.tokens()[:5]
    assert ChatResult.model_validate(outputs[-1]).text == "".join(chunks)
