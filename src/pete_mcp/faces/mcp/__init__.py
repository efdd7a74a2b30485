"""The MCP face: tools, resources and prompts over stdio (`pete-mcp`) and Streamable HTTP."""

from __future__ import annotations

from .server import build_mcp_server, main, mcp_face

__all__ = ["build_mcp_server", "main", "mcp_face"]
