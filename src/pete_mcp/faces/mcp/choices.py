"""The choices Pete's MCP face names, so a model need not guess: model enums and completions.

- The model arguments (`run_prompt.model`, `switch_model.name`) carry the registry's aliases
  as a JSON-schema `enum`. The registry is loaded once, when the core is built (the built-in
  models plus `MODELS_FILE`), so the enum is set when the server is built; a core event
  `models.changed` (published by whatever changes the registry in a running process)
  re-reads it and, when the aliases differ, sends `notifications/tools/list_changed`.
- Completions: prompt arguments (`deploy_checklist.image` from past deploys,
  `diagnose_slow_calls.model` from the registry) and `pete://conversations/{conversation_id}`
  (stored conversation ids by prefix, newest first).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server import MCPServer
from mcp.types import Completion, CompletionArgument, CompletionContext, PromptReference, ResourceTemplateReference

from pete_mcp.core import PeteError
from pete_mcp.gateway import Core
from pete_mcp.ops import recent_images

from .resources import CONVERSATION_URI

__all__ = ["MAX_COMPLETIONS", "MODEL_PARAMETERS", "model_enum", "register_completions", "set_model_enum"]

log = logging.getLogger(__name__)

MAX_COMPLETIONS = 20  # the spec allows 100; a short list is what a picker shows
MODEL_PARAMETERS = {"run_prompt": "model", "switch_model": "name"}  # tool → its model-alias argument


def model_enum(core: Core) -> list[str]:
    return [spec.alias for spec in core.models]


def set_model_enum(mcp: MCPServer, aliases: list[str]) -> bool:
    """Put `aliases` in the model arguments' schemas; True when that changed a schema.

    The SDK builds a tool's input schema from its signature once and has no public way to
    amend it, so this edits the registered tool's schema (as `resources.py` reaches the
    low-level server for legacy subscriptions).
    """
    changed = False
    for tool_name, parameter in MODEL_PARAMETERS.items():
        tool = mcp._tool_manager.get_tool(tool_name)  # pyright: ignore[reportPrivateUsage]
        if tool is None:
            continue
        schema: dict[str, Any] = tool.parameters["properties"][parameter]
        branches: list[dict[str, Any]] = [
            b for b in schema.get("anyOf", [schema]) if isinstance(b, dict) and b.get("type") == "string"
        ]
        for branch in branches:
            if branch.get("enum") != aliases:
                branch["enum"] = list(aliases)
                changed = True
    return changed


def follow_registry(
    mcp: MCPServer, core: Core, tools_changed: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """A coroutine function that re-reads the registry and announces a changed tool list."""

    async def refresh() -> None:
        if set_model_enum(mcp, model_enum(core)):
            await tools_changed()

    return refresh


def register_completions(mcp: MCPServer, core: Core) -> None:
    @mcp.completion()
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        typed = argument.value
        try:
            if isinstance(ref, ResourceTemplateReference):
                if ref.uri == CONVERSATION_URI and argument.name == "conversation_id":
                    ids = await core.conversations.ids(prefix=typed, limit=MAX_COMPLETIONS + 1)
                    return _completion(ids)
                return None
            if ref.name == "deploy_checklist" and argument.name == "image":
                return _completion(await recent_images(core.store, prefix=typed, limit=MAX_COMPLETIONS + 1))
            if ref.name == "diagnose_slow_calls" and argument.name == "model":
                return _completion([a for a in model_enum(core) if a.startswith(typed)])
        except PeteError as exc:  # a completion is a convenience: never fail the client over it
            log.info("completion for %s failed: %s", argument.name, exc)
        return None


def _completion(values: list[str]) -> Completion:
    more = len(values) > MAX_COMPLETIONS
    return Completion(values=values[:MAX_COMPLETIONS], has_more=more, total=None if more else len(values))
