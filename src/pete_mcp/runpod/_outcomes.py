"""RunPod answers read as outcomes: a finished job or an OpenAI-route error becomes the typed error."""

from __future__ import annotations

from typing import Any, NoReturn

import httpx

from pete_mcp.core import (
    JobFailed,
    ProviderTimeout,
)

from ._http import PROVIDER, RunPodHTTP
from ._wire import (
    Job,
    JobStatus,
    decode_worker_error,
)

__all__ = ["raise_for_job", "raise_openai_error", "raise_openai_job_error"]


def raise_for_job(job: Job) -> Job:
    """Return a COMPLETED job; raise the typed error for any other terminal state.

    Raises:
        JobFailed: FAILED (message = the worker's own error) or CANCELLED.
        ProviderTimeout: TIMED_OUT.
    """
    if job.status is JobStatus.COMPLETED or not job.is_terminal:
        return job
    if job.status is JobStatus.FAILED:
        error = decode_worker_error(job.error)
        where = f" on worker {job.worker_id or error.worker_id}" if (job.worker_id or error.worker_id) else ""
        raise JobFailed(f"RunPod job {job.id} failed{where}: {error.describe()}", provider=PROVIDER, job_id=job.id)
    if job.status is JobStatus.TIMED_OUT:
        raise ProviderTimeout(
            f"RunPod job {job.id} timed out (TIMED_OUT): it outlived its TTL in the queue or its execution timeout.",
            provider=PROVIDER,
            hint="Raise the job policy's executionTimeout/ttl, or add workers.",
        )
    raise JobFailed(f"RunPod job {job.id} was cancelled before it finished.", provider=PROVIDER, job_id=job.id)


def raise_openai_error(error: Any) -> NoReturn:
    """An OpenAI-route error object → the job's typed failure (TIMED_OUT → ProviderTimeout)."""
    decoded = decode_worker_error(error)
    if isinstance(error, dict) and error.get("code") == JobStatus.TIMED_OUT:
        raise ProviderTimeout(f"RunPod OpenAI-route job timed out: {decoded.message}", provider=PROVIDER)
    raise JobFailed(f"RunPod OpenAI-route job failed: {decoded.describe()}", provider=PROVIDER)


def raise_openai_job_error(response: httpx.Response, *, fallback: RunPodHTTP) -> NoReturn:
    """A 500/504 whose body names a failed job is that job's error; any other is RunPod's."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        raise_openai_error(body["error"])
    fallback.raise_for_status(response, "POST /openai", job_id=None)
