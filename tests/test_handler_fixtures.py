"""The shared job fixtures (tests/fixtures/jobs/): they parse, their examples are valid, and the worker agrees.

The gateway's tests reuse the same files, so both ends of the job contract are held to one set.
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

from pete_mcp.contract import ChatResult, ControlResult, JobError, StreamChunk, parse_job_input
from tests.support.model_server import RunningModelServer

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "jobs").glob("*.json"))
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
            parse_job_input(fixture["input"])
    else:
        assert type(parse_job_input(fixture["input"])).__name__ == expected


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
    config = WorkerConfig(model_url=model_server.url, worker_id="w1")
    async with httpx.AsyncClient(timeout=60) as http:
        handler = JobHandler(OpenAICompatibleBackend(http, config.model_url), config)
        outputs = [o async for o in handler.handle({"id": path.stem, "input": fixture["input"]})]

    expect = fixture["expect"]
    if expect["output"] == "error":
        assert len(outputs) == 1 and set(outputs[0]) == {"error"}
        assert JobError.model_validate_json(outputs[0]["error"]).code == expect["error_code"]
    else:
        check_shape(expect["output"], outputs)
