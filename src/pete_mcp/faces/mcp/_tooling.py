"""What every Pete MCP tool shares: annotations, the error mapping and the deploy confirmation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from mcp import MCPError
from mcp.server.mcpserver import AcceptedElicitation, Context, Elicit, ElicitationResult, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import (
    INTERNAL_ERROR,
    ToolAnnotations,
)
from pydantic import BaseModel, Field

from pete_mcp.core import ConfigError, PeteError

DEFAULT_BUDGET_S = 40.0  # under the ~60 s some hosts allow a tool call (mcp.md §9)
PROGRESS_EVERY_S = 0.25
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)
READ_ONLY_LOCAL = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
WRITE_IDEMPOTENT = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True)


# Parameter and confirmation models live at module level: the SDK resolves them by name.
class PromptMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class Approval(BaseModel):
    approve: bool = Field(description="Go ahead? In-flight requests on the endpoint may fail.")


def approval_for(question: str, confirm: bool, ctx: Context) -> Approval | Elicit[Approval]:
    caps = ctx.client_capabilities
    if caps is not None and caps.elicitation is not None:
        return Elicit(question, Approval)
    if confirm:  # no dialog here: the model asked the user in the chat
        return Approval(approve=True)
    raise ToolError(
        "This changes the live RunPod endpoint. Ask the user to confirm, then call again with confirm=true."
    )


async def approve_deploy(image: str, confirm: bool, ctx: Context) -> Approval | Elicit[Approval]:
    return approval_for(f"Roll the RunPod endpoint to {image!r}? Workers restart as they finish.", confirm, ctx)


async def approve_rollback(confirm: bool, ctx: Context) -> Approval | Elicit[Approval]:
    return approval_for("Roll the RunPod endpoint back to the image before the last deploy?", confirm, ctx)


async def approve_purge(confirm: bool, ctx: Context) -> Approval | Elicit[Approval]:
    return approval_for("Drop every queued (not yet running) job on the RunPod endpoint?", confirm, ctx)


DeployApproval = Annotated[ElicitationResult[Approval], Resolve(approve_deploy)]
RollbackApproval = Annotated[ElicitationResult[Approval], Resolve(approve_rollback)]
PurgeApproval = Annotated[ElicitationResult[Approval], Resolve(approve_purge)]
Budget = Annotated[float, Field(ge=1, le=55, description="Seconds to wait before returning a job_id instead.")]
FollowSeconds = Annotated[float, Field(ge=0, le=45, description="Seconds to follow the rollout before returning.")]


def approved(approval: ElicitationResult[Approval]) -> bool:
    return isinstance(approval, AcceptedElicitation) and approval.data.approve


@contextmanager
def tool_errors() -> Iterator[None]:
    """Pete errors → `ToolError` (the model reads it); misconfiguration → `MCPError` (the host shows it)."""
    try:
        yield
    except ConfigError as exc:
        raise MCPError(INTERNAL_ERROR, str(exc), {"code": exc.code}) from exc
    except PeteError as exc:
        raise ToolError(str(exc)) from exc
