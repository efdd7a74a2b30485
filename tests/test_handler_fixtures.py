"""The shared job fixtures (tests/fixtures/jobs/): they parse, their examples are valid, and the worker agrees.

The gateway's tests reuse the same files, so both ends of the job contract are held to one set.
A fixture's `expect` may also name the `model` a job runs on (null: the worker's default, its
first preloaded model) and the input keys the worker drops with a warning (`ignored`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from gpu_handler import JobHandler, WorkerConfig
from gpu_handler.backends import OpenAICompatibleBackend
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from pete_mcp.contract import (
    ChatJob,
    ChatResult,
    ControlResult,
    JobError,
    StreamChunk,
    normalize_job_input,
    parse_job_input,
)
from tests.support.model_server import RunningModelServer

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "jobs").glob("*.json"))
BAD_INPUT = [p for p in FIXTURES if json.loads(p.read_text())["expect"].get("error_code") == "bad_input"]
# Inputs of a readable shape (even if a value is then refused): these have keys to keep or drop.
READABLE = [p for p in FIXTURES if (e := json.loads(p.read_text())["expect"])["parses_as"] or "ignored" in e]
DEFAULT_MODEL = "smollm2"  # the worker's first preloaded model in these tests
SHAPES = {
    "chunks_then_result",
    "result_only",
    "sse",
    "openai_completion",
    "openai_model_list",
    "control_result",
    "error",
}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def check_shape(kind: str, outputs: list[Any]) -> None:
    """Assert that a job's aggregated output has the shape `kind` names."""
    if kind == "chunks_then_result":
        chunks = [StreamChunk.model_validate(o) for o in outputs[:-1]]
        result = ChatResult.model_validate(outputs[-1])
        assert chunks and "".join(c.text for c in chunks) == result.text
    elif kind == "result_only":
        assert len(outputs) == 1
        ChatResult.model_validate(outputs[0])
    elif kind == "sse":
        body = "".join(outputs)
        assert all(isinstance(o, str) for o in outputs) and body.endswith("data: [DONE]\n\n")
        frames = [f.removeprefix("data: ") for f in body.split("\n\n") if f]
        chunks = [ChatCompletionChunk.model_validate_json(f) for f in frames[:-1]]
        assert frames[-1] == "[DONE]" and chunks
    elif kind == "openai_completion":
        assert len(outputs) == 1
        ChatCompletion.model_validate(outputs[0])
    elif kind == "openai_model_list":
        assert len(outputs) == 1 and outputs[0]["object"] == "list"
        for model in outputs[0]["data"]:
            Model.model_validate(model)
    elif kind == "control_result":
        assert len(outputs) == 1
        ControlResult.model_validate(outputs[0])
    else:
        raise AssertionError(f"unknown output shape {kind!r}")


def test_there_is_a_fixture_for_every_output_shape() -> None:
    assert {load(p)["expect"]["output"] for p in FIXTURES} == SHAPES


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture_parses_as_its_declared_job_shape(path: Path) -> None:
    fixture = load(path)
    expected = fixture["expect"]["parses_as"]
    if expected is None:
        with pytest.raises(pydantic.ValidationError):
            parse_job_input(fixture["input"], default_model=DEFAULT_MODEL)
    else:
        assert type(parse_job_input(fixture["input"], default_model=DEFAULT_MODEL)).__name__ == expected


@pytest.mark.parametrize("path", READABLE, ids=[p.stem for p in READABLE])
def test_fixture_runs_on_its_declared_model_and_drops_its_declared_keys(path: Path) -> None:
    fixture = load(path)
    expect = fixture["expect"]
    normalized = normalize_job_input(fixture["input"], default_model=DEFAULT_MODEL)
    assert list(normalized.ignored) == expect.get("ignored", [])
    if "model" in expect:
        job = parse_job_input(fixture["input"], default_model=DEFAULT_MODEL)
        assert isinstance(job, ChatJob) and job.model == (expect["model"] or DEFAULT_MODEL)


@pytest.mark.anyio
@pytest.mark.parametrize("path", BAD_INPUT, ids=[p.stem for p in BAD_INPUT])
async def test_bad_input_fixtures_fail_before_the_model_server_with_their_example_message(path: Path) -> None:
    fixture = load(path)
    config = WorkerConfig(model_url="http://127.0.0.1:9", preload=(DEFAULT_MODEL,))  # nothing listens there
    async with httpx.AsyncClient(timeout=5) as http:
        handler = JobHandler(OpenAICompatibleBackend(http, config.model_url), config)
        outputs = [o async for o in handler.handle({"id": path.stem, "input": fixture["input"]})]

    assert len(outputs) == 1
    assert JobError.model_validate_json(outputs[0]["error"]) == JobError.model_validate(
        fixture["expect"]["example_error"]
    )


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture_example_output_has_its_declared_shape(path: Path) -> None:
    expect = load(path)["expect"]
    if expect["output"] == "error":
        error = JobError.model_validate(expect["example_error"])
        assert error.code == expect["error_code"]
    else:
        check_shape(expect["output"], expect["example_output"])


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
async def test_the_worker_answers_each_fixture_with_its_declared_shape(
    path: Path, model_server: RunningModelServer
) -> None:
    fixture = load(path)
    config = WorkerConfig(model_url=model_server.url, worker_id="w1", preload=(model_server.chat_model,))
    async with httpx.AsyncClient(timeout=60) as http:
        handler = JobHandler(OpenAICompatibleBackend(http, config.model_url), config)
        outputs = [o async for o in handler.handle({"id": path.stem, "input": fixture["input"]})]

    expect = fixture["expect"]
    if expect["output"] == "error":
        assert len(outputs) == 1 and set(outputs[0]) == {"error"}
        assert JobError.model_validate_json(outputs[0]["error"]).code == expect["error_code"]
    else:
        check_shape(expect["output"], outputs)
