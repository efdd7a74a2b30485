"""The VAPI face: its routes and lifespan, wired once from the core.

`vapi_face(core)` is what `pete_mcp.app.default_faces` mounts; `build_app(core, faces=[vapi_face(core)])`
serves it alone (tests, or a VAPI-only deployment).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from pete_mcp.alerts import pager_from_settings
from pete_mcp.core.escalations import EscalationBook
from pete_mcp.core.property_desk import PropertyDesk
from pete_mcp.faces import Face
from pete_mcp.gateway import Core

from .auth import LlmAuth, WebhookAuth
from .background import Background
from .calls import CallBook
from .custom_llm import LLM_PATHS, CustomLlmEndpoint
from .escalation import Escalator
from .responder import Responder, TurnSettings
from .tools import JamieTools
from .turn import TurnBudget
from .webhook import ModelWarmer, WebhookEndpoint

__all__ = ["VapiFace", "vapi_face"]


class VapiFace(Face):
    """A `Face` that also exposes its parts (tests and the bench look inside)."""

    responder: Responder
    webhook: WebhookEndpoint
    calls: CallBook
    background: Background
    escalator: Escalator


def vapi_face(core: Core) -> VapiFace:
    """Routes: the Custom LLM paths (POST) and `/vapi/webhook` (POST); lifespan: background work."""
    settings = core.settings
    background = Background()
    calls = CallBook(core)
    desk = PropertyDesk(core.store)
    pager = pager_from_settings(settings, core.http, core.events, EscalationBook(core.store))
    escalator = Escalator(desk, pager, background, wait_s=settings.pager_wait_s)
    warmer = ModelWarmer(core, background)
    responder = Responder(
        core,
        calls=calls,
        background=background,
        budget=TurnBudget.from_settings(settings),
        texts=TurnSettings(
            holding_phrase=settings.vapi_holding_phrase,
            apology=settings.vapi_apology,
            on_call_number=settings.on_call_number,
            office_number=settings.office_number,
        ),
        escalator=escalator,
        on_call_start=lambda: warmer.warm_soon(endpoint_only=True),
    )
    llm = CustomLlmEndpoint(
        responder,
        LlmAuth.from_settings(settings),
        tool_frame=settings.vapi_tool_frame,
        text_frames=settings.vapi_text_frames,
    )
    webhook = WebhookEndpoint(
        core,
        calls=calls,
        auth=WebhookAuth.from_settings(settings),
        warmer=warmer,
        tools=JamieTools(desk, escalator=escalator),
    )
    routes: list[BaseRoute] = [Route(path, llm, methods=["POST"]) for path in LLM_PATHS]
    routes.append(Route("/vapi/webhook", webhook.handle, methods=["POST"]))
    face = VapiFace("vapi", routes, lifespan=background.running)
    face.responder, face.webhook, face.calls, face.background = responder, webhook, calls, background
    face.escalator = escalator
    return face
