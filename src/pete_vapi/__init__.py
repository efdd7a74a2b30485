"""Pete's VAPI face: Jamie's Custom LLM endpoint and VAPI's server messages, over the one core.

`vapi_face(core)` is mounted by `pete serve`; see docs/vapi.md for the wire formats, the turn
budget, the emergency layer and Jamie's tools.
"""

from __future__ import annotations

from .auth import LlmAuth, WebhookAuth, verify_vapi_request
from .face import VapiFace, vapi_face

__all__ = ["LlmAuth", "VapiFace", "WebhookAuth", "vapi_face", "verify_vapi_request"]
