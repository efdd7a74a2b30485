"""The faces: each translates one wire (MCP, the dashboard's HTTP API, VAPI in `pete_vapi`) to core
calls and back, and owns its own auth check. `Face` is what each hands the app.
"""

from __future__ import annotations

from ._edge import BodyLimit, BodyLimitMiddleware, HostGuardMiddleware, accepted_hosts, body_limits
from ._face import Face

__all__ = ["BodyLimit", "BodyLimitMiddleware", "Face", "HostGuardMiddleware", "accepted_hosts", "body_limits"]
