"""Who may call /mcp and the dashboard's actions: the plan from settings, and the token verifiers.

Modes: `open` (loopback, no credential configured: nothing is asked), `static` (MCP_TOKEN only:
no authorization server is advertised, since Pete runs none), `builtin` (Pete's own OAuth server,
plus MCP_TOKEN if set), `external` (JWTs from OAUTH_ISSUER checked against its JWKS, plus
MCP_TOKEN if set). MCP_TOKEN always holds every scope.
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import jwt
from mcp.server.auth.provider import AccessToken, TokenVerifier

from pete_mcp.core import ConfigError, Settings, Store

from ._records import Records
from .provider import access_token_from, same_resource
from .scopes import ALL_SCOPES

__all__ = [
    "AuthPlan",
    "ChainVerifier",
    "JwtVerifier",
    "StaticTokenVerifier",
    "StoreTokenVerifier",
    "auth_plan",
    "build_verifier",
]

log = logging.getLogger(__name__)

Mode = Literal["open", "static", "builtin", "external"]
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
JWKS_CACHE_S = 300.0
JWKS_MIN_REFETCH_S = 30.0


@dataclass(frozen=True)
class AuthPlan:
    mode: Mode
    base: str  # Pete's public base URL, no trailing slash
    resource: str  # the protected resource: base + /mcp
    issuer: str | None  # the authorization server Pete advertises; None when it runs and names none
    static: bool  # MCP_TOKEN is accepted


def auth_plan(settings: Settings) -> AuthPlan:
    """Raises ConfigError when both the built-in server and an external issuer are asked for."""
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    resource = f"{base}/mcp"
    static = settings.mcp_token is not None
    external = settings.oauth_issuer is not None
    builtin = (
        settings.oauth_server if settings.oauth_server is not None else (bool(settings.public_url) and not external)
    )
    if builtin and external:
        raise ConfigError("OAUTH_SERVER=true and OAUTH_ISSUER are both set: Pete signs in with one or the other.")
    if builtin:
        return AuthPlan("builtin", base, resource, base, static)
    if external:
        return AuthPlan("external", base, resource, str(settings.oauth_issuer), static)  # exactly as configured
    return AuthPlan("static" if static else "open", base, resource, None, static)


class StaticTokenVerifier:
    """MCP_TOKEN as a bearer (constant-time compare), with every scope."""

    def __init__(self, token: str, resource: str) -> None:
        self._token = token.encode()
        self._resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(
                token=token, client_id="mcp-token", scopes=list(ALL_SCOPES), resource=self._resource, subject="operator"
            )
        return None


class StoreTokenVerifier:
    """Access tokens Pete's own server issued (looked up by hash in the store)."""

    def __init__(self, records: Records, issuer: str) -> None:
        self.records = records
        self.issuer = issuer

    async def verify_token(self, token: str) -> AccessToken | None:
        if not token.startswith("pa_"):
            return None
        return access_token_from(token, await self.records.get_token(token, "access"), self.issuer)


class JwtVerifier:
    """JWT access tokens from an external identity provider: signature (JWKS), iss, aud, exp, scopes."""

    def __init__(self, http: httpx.AsyncClient, *, issuer: str, audience: str, resource: str, jwks_url: str | None):
        self.http = http
        self.issuer = issuer
        self.audience = audience
        self.resource = resource
        self.jwks_url = jwks_url
        self._keys: jwt.PyJWKSet | None = None
        self._fetched_at = 0.0

    async def _jwks_url(self) -> str:
        if self.jwks_url is None:
            response = await self.http.get(f"{self.issuer.rstrip('/')}/.well-known/openid-configuration", timeout=10)
            response.raise_for_status()
            self.jwks_url = str(response.json()["jwks_uri"])
        return self.jwks_url

    async def _key(self, kid: str | None) -> Any:
        now = time.monotonic()
        stale = self._keys is None or now - self._fetched_at > JWKS_CACHE_S
        unknown = self._keys is not None and kid is not None and not any(k.key_id == kid for k in self._keys.keys)
        if stale or (unknown and now - self._fetched_at > JWKS_MIN_REFETCH_S):
            response = await self.http.get(await self._jwks_url(), timeout=10)
            response.raise_for_status()
            self._keys, self._fetched_at = jwt.PyJWKSet.from_dict(response.json()), now
        assert self._keys is not None
        for key in self._keys.keys:
            if kid is None or key.key_id == kid:
                return key.key
        return None

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in JWT_ALGORITHMS:
                return None
            key = await self._key(header.get("kid"))
            if key is None:
                return None
            claims = jwt.decode(
                token,
                key,
                algorithms=[header["alg"]],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
                leeway=30,
            )
        except (jwt.PyJWTError, httpx.HTTPError, KeyError, ValueError) as exc:
            log.info("external token refused: %s", type(exc).__name__ if isinstance(exc, httpx.HTTPError) else exc)
            return None
        raw = claims.get("scope", claims.get("scp", []))
        scopes = raw.split() if isinstance(raw, str) else [str(s) for s in raw]
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or "unknown"),
            scopes=[s for s in scopes if s in ALL_SCOPES],
            expires_at=int(claims["exp"]),
            resource=self.resource,  # the audience was checked above
            subject=str(claims["sub"]) if "sub" in claims else None,
            claims={"iss": claims["iss"]},
        )


class ChainVerifier:
    """The first verifier that accepts the token wins; tokens for another audience are refused."""

    def __init__(self, verifiers: list[TokenVerifier], resource: str) -> None:
        self.verifiers = verifiers
        self.resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        for verifier in self.verifiers:
            found = await verifier.verify_token(token)
            if found is not None:
                if not same_resource(found.resource, self.resource):
                    log.warning("token of client %s is for %r, not %s", found.client_id, found.resource, self.resource)
                    return None
                return found
        return None


def build_verifier(settings: Settings, store: Store, http: httpx.AsyncClient) -> ChainVerifier | None:
    """The verifier for the plan's mode; None in `open` mode."""
    plan = auth_plan(settings)
    chain: list[TokenVerifier] = []
    if settings.mcp_token is not None:
        chain.append(StaticTokenVerifier(settings.mcp_token.get_secret_value(), plan.resource))
    if plan.mode == "builtin":
        chain.append(StoreTokenVerifier(Records(store), plan.base))
    if plan.mode == "external" and plan.issuer is not None:
        audience = settings.oauth_audience or plan.resource
        issuer = str(settings.oauth_issuer)  # compared exactly with the token's iss (a trailing slash counts)
        chain.append(
            JwtVerifier(
                http, issuer=issuer, audience=audience, resource=plan.resource, jwks_url=settings.oauth_jwks_url
            )
        )
    return ChainVerifier(chain, plan.resource) if chain else None
