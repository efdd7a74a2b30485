"""A plain (non-generator) runpod worker: returns a value, an error dict, or raises.

Input: `{"echo": <any>, "sleep_s": 0.0, "raise": "message", "error": "message", "refresh": true}`.
Returns `echo` (wrapped as `{"echo": ...}` when not a dict); `error` returns a dict with an
`error` key; `raise` raises; `refresh` returns `refresh_worker: true` (the SDK sends stopPod).
"""

from __future__ import annotations

import asyncio
from typing import Any

import runpod

from tests.support.workers._markers import mark


async def handler(job: dict[str, Any]) -> Any:
    job_input = job["input"]
    mark(job["id"], "started")
    await asyncio.sleep(float(job_input.get("sleep_s", 0.0)))
    if job_input.get("raise"):
        raise ValueError(job_input["raise"])
    if job_input.get("error"):
        return {"error": job_input["error"], "partial": True}
    result: dict[str, Any] = {"echo": job_input.get("echo")}
    if job_input.get("refresh"):
        result["refresh_worker"] = True
    return result


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
