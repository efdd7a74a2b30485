"""The MCP face over HTTP: the static bearer (`MCP_TOKEN`) and the Host/Origin checks."""

from __future__ import annotations

import hmac

from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl, SecretStr

from pete_mcp.core import Settings

__all__ = ["mcp_auth", "transport_security"]


class _SharedToken(TokenVerifier):
    """Accepts exactly MCP_TOKEN (constant-time compare)."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token.get_secret_value().encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token=token, client_id="operator", scopes=["pete"])
        return None


def _public_base(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def mcp_auth(settings: Settings) -> tuple[AuthSettings | None, TokenVerifier | None]:
    if settings.mcp_token is None:
        return None, None
    base = _public_base(settings)
    auth = AuthSettings(
        issuer_url=AnyHttpUrl(base),
        resource_server_url=AnyHttpUrl(f"{base}/mcp"),
        required_scopes=["pete"],
        validate_token_resource=False,
    )
    return auth, _SharedToken(settings.mcp_token)


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
