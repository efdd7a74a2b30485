"""What goes on RunPod's wire from this client: request bodies and job paths, and JSON read back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel

from pete_mcp.core import (
    ProviderError,
)

from ._http import PROVIDER
from ._wire import (
    JobPolicy,
)

__all__ = [
    "OPENAI_JOB_ERROR_STATUSES",
    "JobInput",
    "PolicyInput",
    "job_path",
    "json_object",
    "request_body",
    "sse_json",
]

OPENAI_JOB_ERROR_STATUSES = frozenset({500, 504})
JobInput = BaseModel | Mapping[str, Any]
PolicyInput = JobPolicy | Mapping[str, Any] | None


def request_body(input: JobInput, *, webhook: str | None, policy: PolicyInput) -> dict[str, Any]:
    body: dict[str, Any] = {
        "input": input.model_dump(mode="json", exclude_none=True) if isinstance(input, BaseModel) else dict(input)
    }
    if webhook:
        body["webhook"] = webhook
    if policy is not None:
        body["policy"] = (policy if isinstance(policy, JobPolicy) else JobPolicy.model_validate(policy)).to_wire()
    return body


def job_path(job_id: str) -> str:
    if not job_id or "/" in job_id or "?" in job_id:
        raise ValueError(f"not a RunPod job id: {job_id!r}")
    return job_id


def json_object(response: httpx.Response, *, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ProviderError(f"RunPod answered {what} with something other than a JSON object.", provider=PROVIDER)
    return data


def sse_json(data: str) -> dict[str, Any] | None:
    try:
        chunk = json.loads(data)
    except ValueError:
        return None
    return chunk if isinstance(chunk, dict) else None
