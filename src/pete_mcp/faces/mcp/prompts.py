"""The words Pete's MCP face gives a model: server instructions and the operator prompts.

Why apart: they are product copy, edited on their own.
"""

from __future__ import annotations

from mcp.server import MCPServer

__all__ = ["DIAGNOSE_SLOW_CALLS", "INSTRUCTIONS", "deploy_checklist_text", "register_prompts"]

INSTRUCTIONS = (
    "Operate Pete, the LLM behind the property-management voice assistant Jamie, on RunPod serverless. "
    "Start with `health`; `list_models` and `switch_model` choose the model; `run_prompt` tests it and returns "
    "a job_id when a cold start outlasts the call (collect it with `get_job`). `deploy`, `rollback` and "
    "`purge_queue` change the endpoint: ask the user first."
)

DIAGNOSE_SLOW_CALLS = (
    "Calls to Jamie feel slow. Diagnose it step by step:\n"
    "1. Call `health` and read each check that is not ok, with its hint.\n"
    "2. Read `pete://metrics/live`: compare time to first token (p50, p95) per model and look at errors.\n"
    "3. Call `endpoint_status` and `list_workers`: its diagnosis tells a cold start (wait) from too few\n"
    "   workers (raise max workers) and a crash-looping worker (read `worker_logs`, `rollback`).\n"
    "4. Call `list_models` and compare recent latency across models.\n"
    "Then say what is slow, why, and the one change that would help most (do not change anything)."
)


def deploy_checklist_text(image: str) -> str:
    return (
        f"Deploy {image} to the RunPod endpoint safely:\n"
        "1. Call `health` and `endpoint_status`; stop if anything fails.\n"
        "2. Tell the user what will change and ask them to confirm.\n"
        f"3. Call `deploy` with image={image!r} (confirm=true only if the user said yes in chat).\n"
        "4. Run `run_prompt` with a short test prompt; if it fails, offer `rollback`."
    )


def register_prompts(mcp: MCPServer) -> None:
    @mcp.prompt(
        title="Diagnose slow calls",
        description="Find out why calls are slow: cold starts, queueing, a slow model or provider.",
    )
    def diagnose_slow_calls() -> str:
        return DIAGNOSE_SLOW_CALLS

    @mcp.prompt(title="Deploy checklist", description="Deploy a new worker image safely.")
    def deploy_checklist(image: str) -> str:
        return deploy_checklist_text(image)
