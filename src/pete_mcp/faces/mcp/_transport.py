"""The MCP face over HTTP: who may call /mcp (from `faces.auth`) and the Host/Origin checks."""

from __future__ import annotations

from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl

from pete_mcp.core import Settings
from pete_mcp.gateway import Core

from ..auth import auth_plan, build_verifier

__all__ = ["mcp_auth", "transport_security"]


def mcp_auth(core: Core) -> tuple[AuthSettings | None, TokenVerifier | None]:
    """The SDK's auth settings and verifier for /mcp, from the sign-in plan (`faces.auth`).

    With no authorization server in the plan (MCP_TOKEN only), `resource_server_url` stays unset,
    so no protected-resource metadata and no `resource_metadata` challenge name a server Pete
    does not run. Otherwise the metadata route is Pete's own (`protected_resource_routes`).
    """
    plan = auth_plan(core.settings)
    verifier = build_verifier(core.settings, core.store, core.http)
    if verifier is None:
        return None, None
    if plan.issuer is None:
        return AuthSettings(issuer_url=AnyHttpUrl(plan.base), resource_server_url=None), verifier
    auth = AuthSettings(
        issuer_url=AnyHttpUrl(plan.issuer),
        resource_server_url=AnyHttpUrl(plan.resource),
        validate_token_resource=True,
    )
    return auth, verifier


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Loopback names plus ALLOWED_HOSTS and PUBLIC_URL's host (each bare and with any port): anything else gets 421."""
    hosts = ["127.0.0.1", "localhost", "[::1]", *settings.named_hosts]
    origins = [f"http://{h}:*" for h in hosts[:3]] + [f"http://{h}" for h in hosts[:3]]
    for host in hosts[3:]:
        origins += [f"https://{host}", f"http://{host}", f"https://{host}:*", f"http://{host}:*"]
    if settings.public_url:
        origins.append(settings.public_url.rstrip("/"))
    return TransportSecuritySettings(
        allowed_hosts=[form for h in hosts for form in (h, f"{h}:*")], allowed_origins=origins
    )
