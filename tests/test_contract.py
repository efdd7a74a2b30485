"""The job contract's input reading: every accepted chat shape becomes the same `ChatJob`.

The shapes themselves, run through the worker, are the fixtures in tests/fixtures/jobs/
(tests/test_handler_fixtures.py); these tests pin the mapping rules one by one.
"""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from pete_mcp.contract import (
    ChatJob,
    ChatOptions,
    ControlJob,
    Message,
    OpenAIJob,
    normalize_job_input,
    parse_job_input,
)

HI = [{"role": "user", "content": "Hi"}]


def chat(raw: Any, *, default_model: str | None = "smollm2") -> ChatJob:
    job = parse_job_input(raw, default_model=default_model)
    assert isinstance(job, ChatJob)
    return job


def test_petes_own_job_reads_exactly_as_before() -> None:
    raw = {
        "kind": "chat",
        "model": "jamie",
        "messages": HI,
        "options": {"temperature": 0.2, "max_tokens": 64, "seed": 7, "stop": ["\n"]},
        "stream": False,
        "request_id": "req-1",
    }
    normalized = normalize_job_input(raw, default_model="smollm2")

    assert normalized.ignored == ()
    assert ChatJob.model_validate(normalized.data) == ChatJob.model_validate(raw)


def test_the_gateways_serialized_job_round_trips_unchanged() -> None:
    sent = ChatJob(model="jamie", messages=[Message(role="user", content="Hi")], options=ChatOptions(num_ctx=8192))
    wire = sent.model_dump(mode="json", exclude_none=True)  # what RunPodClient sends as the job input

    assert wire["options"] == {"num_ctx": 8192}
    assert normalize_job_input(wire).ignored == ()
    assert chat(wire) == sent


def test_an_openai_body_moves_its_sampling_keys_into_options() -> None:
    job = chat(
        {
            "model": "jamie",
            "messages": HI,
            "max_tokens": 64,
            "temperature": 0.5,
            "top_p": 0.9,
            "stop": "END",
            "seed": 3,
            "stream": False,
        }
    )

    assert job.model == "jamie" and not job.stream
    assert job.options == ChatOptions(max_tokens=64, temperature=0.5, top_p=0.9, stop=["END"], seed=3)


def test_max_completion_tokens_is_read_as_max_tokens() -> None:
    assert chat({"messages": HI, "max_completion_tokens": 12}).options.max_tokens == 12


def test_worker_vllm_sampling_params_become_options() -> None:
    job = chat({"messages": HI, "sampling_params": {"max_tokens": 16, "temperature": 0, "stop": ["x"], "seed": 1}})
    assert job.options == ChatOptions(max_tokens=16, temperature=0, stop=["x"], seed=1)


def test_a_prompt_becomes_one_user_message() -> None:
    job = chat({"prompt": "When is rent due?", "sampling_params": {"max_tokens": 8}})
    assert [m.model_dump() for m in job.messages] == [{"role": "user", "content": "When is rent due?"}]


def test_a_missing_model_is_the_default_model() -> None:
    assert chat({"messages": HI}, default_model="peteollama:jamie-fixed").model == "peteollama:jamie-fixed"


def test_without_a_default_a_missing_model_is_an_error() -> None:
    with pytest.raises(pydantic.ValidationError, match="model"):
        parse_job_input({"messages": HI})


def test_options_win_over_sampling_params_which_win_over_the_top_level() -> None:
    job = chat(
        {
            "messages": HI,
            "max_tokens": 1,
            "temperature": 1.0,
            "sampling_params": {"max_tokens": 2, "seed": 5},
            "options": {"max_tokens": 3},
        }
    )
    assert job.options == ChatOptions(max_tokens=3, seed=5, temperature=1.0)


def test_keys_nothing_reads_are_dropped_and_named_wherever_they_are() -> None:
    normalized = normalize_job_input(
        {
            "messages": HI,
            "n": 1,
            "frequency_penalty": 0.1,
            "sampling_params": {"repetition_penalty": 1.1},
            "options": {"top_k": 40},
        },
        default_model="smollm2",
    )

    assert normalized.ignored == ("n", "frequency_penalty", "sampling_params.repetition_penalty", "options.top_k")
    assert ChatJob.model_validate(normalized.data).options == ChatOptions()


def test_the_context_window_is_read_under_either_name() -> None:
    assert chat({"messages": HI, "options": {"context_window": 8192}}).options.num_ctx == 8192
    assert chat({"messages": HI, "num_ctx": 4096}).options.num_ctx == 4096
    assert ChatOptions.model_validate({"context_window": 2048}).num_ctx == 2048


def test_openai_content_parts_and_the_developer_role_are_read_as_text() -> None:
    job = chat(
        {
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
            ]
        }
    )
    assert [(m.role, m.content) for m in job.messages] == [("system", "Be brief."), ("user", "Hi there")]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"max_tokens": 64}, "messages"),
        ({"messages": "Hi"}, "messages"),
        ({"prompt": ["Hi"]}, "prompt"),
        ({"messages": HI, "max_tokens": "lots"}, "options.max_tokens"),
        ({"messages": HI, "sampling_params": "greedy"}, "sampling_params"),
        ({"messages": HI, "prompt": "Hi"}, "messages"),
        ({"messages": HI, "top_p": 2}, "options.top_p"),
        ({"messages": HI, "num_ctx": 0}, "options.num_ctx"),
        ("Hi", ""),
    ],
)
def test_an_unreadable_input_is_a_validation_error(raw: Any, field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        parse_job_input(raw, default_model="smollm2")
    assert field in str(caught.value)


def test_openai_route_and_control_jobs_pass_through_untouched() -> None:
    openai_job = {"openai_route": "/v1/chat/completions", "openai_input": {"model": "m", "messages": HI, "top_k": 4}}
    control = {"kind": "control", "action": "models"}

    assert normalize_job_input(openai_job).data is openai_job
    assert isinstance(parse_job_input(openai_job), OpenAIJob)
    assert isinstance(parse_job_input(control, default_model="smollm2"), ControlJob)
