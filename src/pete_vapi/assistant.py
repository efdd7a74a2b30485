"""Jamie's VAPI assistant configuration, returned to `assistant-request`.

The model is a `custom-llm` whose base URL is Pete's `/vapi/llm` (VAPI appends
`/chat/completions`; the path quirk is served either way). Transfers are declared on the
`transferCall` tool (VAPI rejects undeclared numbers), server messages are listed
explicitly (each is a round trip), and the Custom LLM credential travels as an extra header,
because a custom-llm API key's `Authorization` prefix is not documented — only in a reply to
an authenticated webhook request. The webhook server
is not set here, so messages keep going to the phone number's server URL and credential.
"""

from __future__ import annotations

from typing import Any

from pete_mcp.core.models import JAMIE_SYSTEM_PROMPT
from pete_mcp.core.property_desk import Tenant
from pete_mcp.core.settings import Settings

from .auth import LlmAuth
from .tools import tool_protocol_prompt

__all__ = ["SERVER_MESSAGES", "jamie_assistant", "jamie_system_prompt", "llm_base_url"]

SERVER_MESSAGES = [
    "status-update",
    "end-of-call-report",
    "tool-calls",
    "transfer-destination-request",
    "hang",
    "user-interrupted",
]
FIRST_MESSAGE = "Thanks for calling, this is Jamie. How can I help you today?"
ON_CALL_MESSAGE = "If anyone is in danger, leave now and call 911. Connecting you to our on-call team."
HANG_UP_HOOK_REASONS = [
    "pipeline-error-custom-llm-500-server-error",
    "pipeline-error-custom-llm-llm-failed",
    "pipeline-error-custom-llm-503-server-overloaded-error",
]


def llm_base_url(settings: Settings, request_base: str) -> str:
    """`{PUBLIC_URL}/vapi/llm`, or the URL this request came in on when PUBLIC_URL is unset."""
    base = (settings.public_url or request_base).rstrip("/")
    return f"{base}/vapi/llm"


def jamie_system_prompt() -> str:
    return f"{JAMIE_SYSTEM_PROMPT}\n\n{tool_protocol_prompt()}"


def jamie_assistant(
    settings: Settings, *, llm_url: str, model: str, tenant: Tenant | None, with_secret: bool = True
) -> dict[str, Any]:
    """The `assistant-request` reply: `{"assistant": {...}, "assistantOverrides": {...}}`.

    `with_secret=False` (the webhook request was not authenticated) leaves out the Custom LLM key.
    """
    model_config: dict[str, Any] = {
        "provider": "custom-llm",
        "url": llm_url,
        "model": model,
        "temperature": 0.3,
        "maxTokens": 200,
        "timeoutSeconds": 20,
        "metadataSendMode": "variable",
        "messages": [{"role": "system", "content": jamie_system_prompt()}],
        "tools": [
            {
                "type": "transferCall",
                "destinations": [
                    {
                        "type": "number",
                        "number": settings.on_call_number,
                        # Spoken on an emergency transfer when no control URL could say the safety line.
                        "message": ON_CALL_MESSAGE,
                        "description": "on-call maintenance team, for emergencies",
                    },
                    {
                        "type": "number",
                        "number": settings.office_number,
                        "message": "Connecting you to the office now.",
                        "description": "the property-management office",
                    },
                ],
            },
            {"type": "endCall"},
        ],
    }
    llm_auth = LlmAuth.from_settings(settings)
    if with_secret and llm_auth.enabled and llm_auth.key:
        model_config["headers"] = {"X-Vapi-Secret": llm_auth.key}
    variables = {"tenantName": tenant.name, "unit": tenant.unit, "property": tenant.property} if tenant else {}
    return {
        "assistant": {
            "name": "Jamie",
            "firstMessage": FIRST_MESSAGE,
            "model": model_config,
            "serverMessages": SERVER_MESSAGES,
            # A Custom LLM failure ends the call: hand the caller to a person instead of hanging up.
            "hooks": [
                {
                    "on": "call.ending",
                    "filters": [{"type": "oneOf", "key": "call.endedReason", "oneOf": HANG_UP_HOOK_REASONS}],
                    "do": [
                        {
                            "type": "tool",
                            "tool": {
                                "type": "transferCall",
                                "destinations": [{"type": "number", "number": settings.on_call_number}],
                            },
                        }
                    ],
                }
            ],
        },
        "assistantOverrides": {"variableValues": variables},
    }
