"""Find the RunPod endpoint client behind the core's `runpod` provider, if there is one.

Why: endpoint health, queue purges and job status are RunPod operations, not provider
ones, and the core holds exactly one `RunPodClient` (inside the runpod provider). A gateway
built with other providers only (tests, an OpenAI-compatible fallback) has none, and the
operator tools then say "RunPod not configured" instead of failing.
"""

from __future__ import annotations

from pete_mcp.gateway import Core
from pete_mcp.runpod import RunPodClient

__all__ = ["RUNPOD_NOT_CONFIGURED_HINT", "RUNPOD_PROVIDER", "runpod_client"]

RUNPOD_PROVIDER = "runpod"
RUNPOD_NOT_CONFIGURED_HINT = (
    "Set RUNPOD_API_KEY and RUNPOD_ENDPOINT_ID for the real endpoint, or run `pete up` for the local one."
)


def runpod_client(core: Core) -> RunPodClient | None:
    """The `RunPodClient` the runpod provider talks through; None without a runpod provider."""
    provider = core.router.providers.get(RUNPOD_PROVIDER)
    if provider is None:
        return None
    client = getattr(provider, "client", None)  # RunPodProvider.client
    return client if isinstance(client, RunPodClient) else None
