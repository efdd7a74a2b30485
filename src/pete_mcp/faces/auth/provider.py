"""Pete's OAuth 2.1 authorization server: the MCP SDK's `OAuthAuthorizationServerProvider` over the store.

The SDK's handlers do the protocol (request parsing, PKCE S256, exact redirect-URI match, error
codes); this provider keeps the state. `authorize` parks the request and sends the browser to
the consent page (`consent.py`), which signs the operator in and turns it into a code. Codes
live 5 minutes and work once (a second use revokes what the first issued); access tokens are
short-lived and bound to Pete's /mcp URL; refresh tokens rotate on every use, and presenting a
rotated one again revokes the whole grant. Clients come from Dynamic Client Registration or,
when the client_id is a URL, from its Client ID Metadata Document (`cimd.py`).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from ._records import Records, TokenRow, digest, new_secret
from .cimd import CimdError, CimdFetcher, is_url_client_id
from .scopes import ALL_SCOPES

__all__ = ["PeteAccessToken", "PeteAuthProvider", "PeteRefreshToken", "access_token_from", "same_resource"]

log = logging.getLogger(__name__)

REQUEST_TTL_S = 600.0
CODE_TTL_S = 300.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class PeteAccessToken(AccessToken):
    grant_id: str = ""


class PeteRefreshToken(RefreshToken):
    grant_id: str = ""
    token_hash: str = ""


def same_resource(a: str | None, b: str) -> bool:
    return a is not None and a.rstrip("/") == b.rstrip("/")


def access_token_from(token: str, row: TokenRow | None, issuer: str) -> PeteAccessToken | None:
    """The access token a store row stands for, or None when it is unknown, revoked or expired."""
    if row is None or row.revoked or row.expires_at < time.time():
        return None
    return PeteAccessToken(
        token=token,
        client_id=row.client_id,
        scopes=row.scopes,
        expires_at=int(row.expires_at),
        resource=row.audience,
        subject=row.subject,
        claims={"iss": issuer},
        grant_id=row.grant_id,
    )


def _redirect_uri_allowed(uri: str) -> bool:
    parts = urlsplit(uri)
    if parts.fragment:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme == "http":
        return parts.hostname in LOOPBACK  # RFC 8252 §7.3 loopback redirect
    return parts.scheme not in ("", "javascript", "data", "file") and "." in parts.scheme  # app's private scheme


class PeteAuthProvider:
    """Implements `mcp.server.auth.provider.OAuthAuthorizationServerProvider` (structurally)."""

    def __init__(
        self,
        records: Records,
        *,
        issuer: str,
        resource: str,
        access_ttl_s: float,
        refresh_ttl_s: float,
        cimd: CimdFetcher | None,
    ) -> None:
        self.records = records
        self.issuer = issuer
        self.resource = resource
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.cimd = cimd

    # --- clients ---------------------------------------------------------------------------
    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        found = await self.records.get_client(client_id)
        if found is not None:
            kind, info, secret_hash, expires_at = found
            if kind != "cimd" or (expires_at or 0) > time.time():
                return OAuthClientInformationFull.model_validate(
                    {**info, "client_secret": f"sha256:{secret_hash}" if secret_hash else None}
                )
        if self.cimd is None or not is_url_client_id(client_id):
            return None
        try:
            client = await self.cimd.fetch(client_id)
        except CimdError as exc:
            log.warning("client metadata document %s refused: %s", client_id[:200], exc)
            return None
        if any(not _redirect_uri_allowed(str(u)) for u in client.redirect_uris or ()):
            log.warning("client metadata document %s refused: a redirect URI is not https or loopback", client_id)
            return None
        if client.scope is None:
            client.scope = " ".join(ALL_SCOPES)
        expires = time.time() + self.cimd.policy.cache_s
        await self.records.put_client(client_id, "cimd", client.model_dump(mode="json"), None, expires)
        return client

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        bad = [str(u) for u in client_info.redirect_uris or () if not _redirect_uri_allowed(str(u))]
        if bad:
            raise RegistrationError(
                "invalid_redirect_uri", f"redirect URIs must be https, http on loopback or an app scheme: {bad[0]}"
            )
        info = client_info.model_dump(mode="json", exclude={"client_secret"})
        await self.records.put_client(client_info.client_id, "dcr", info, client_info.client_secret)
        log.info("registered OAuth client %s (%s)", client_info.client_id, client_info.client_name or "unnamed")

    # --- authorization ---------------------------------------------------------------------
    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if params.resource is not None and not same_resource(params.resource, self.resource):
            raise AuthorizeError("invalid_target", f"this server issues tokens for {self.resource} only")
        scopes = params.scopes or (client.scope.split() if client.scope else list(ALL_SCOPES))
        if unknown := [s for s in scopes if s not in ALL_SCOPES]:
            raise AuthorizeError("invalid_scope", f"unknown scope {unknown[0]!r}")
        request_id = new_secret("r_")
        stored = {
            "state": params.state,
            "scopes": scopes,
            "code_challenge": params.code_challenge,
            "redirect_uri": str(params.redirect_uri),
            "redirect_uri_provided_explicitly": params.redirect_uri_provided_explicitly,
            "resource": params.resource,
        }
        await self.records.add_request(request_id, client.client_id, stored, new_secret(), REQUEST_TTL_S)
        return f"{self.issuer}/authorize/consent?{urlencode({'request': request_id})}"

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        row = await self.records.get_code(authorization_code)
        if row is None or row["client_id"] != client.client_id:
            log.warning("token request with an unknown code from client %s", client.client_id)
            return None
        if row["used_by"] is not None:
            log.warning("authorization code reused by client %s: revoking its grant", client.client_id)
            await self.records.revoke_grant(row["used_by"])
            return None
        p = row["params"]
        return AuthorizationCode(
            code=authorization_code,
            scopes=row["scopes"],
            expires_at=row["expires_at"],
            client_id=row["client_id"],
            code_challenge=p["code_challenge"],
            redirect_uri=p["redirect_uri"],
            redirect_uri_provided_explicitly=p["redirect_uri_provided_explicitly"],
            resource=p["resource"],
            subject=row["subject"],
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        grant_id = await self.records.claim_code(authorization_code.code)
        if grant_id is None:
            raise TokenError("invalid_grant", "authorization code was already used")
        return await self._issue(client.client_id, grant_id, authorization_code.subject, authorization_code.scopes)

    # --- tokens ----------------------------------------------------------------------------
    async def _issue(
        self, client_id: str, grant_id: str, subject: str | None, scopes: list[str], rotated_from: str | None = None
    ) -> OAuthToken:
        access, refresh = new_secret("pa_"), new_secret("pr_")
        common: dict[str, Any] = {
            "grant_id": grant_id,
            "client_id": client_id,
            "subject": subject,
            "scopes": scopes,
            "audience": self.resource,
        }
        await self.records.add_token(access, "access", ttl_s=self.access_ttl_s, **common)
        await self.records.add_token(refresh, "refresh", ttl_s=self.refresh_ttl_s, rotated_from=rotated_from, **common)
        log.info("issued tokens to client %s for %s (%s)", client_id, subject, " ".join(scopes))
        return OAuthToken(
            access_token=access, expires_in=int(self.access_ttl_s), scope=" ".join(scopes), refresh_token=refresh
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> PeteRefreshToken | None:
        row = await self.records.get_token(refresh_token, "refresh")
        if row is None or row.client_id != client.client_id:
            return None
        if row.rotated and not row.revoked:
            log.warning("rotated refresh token presented again by client %s: revoking its grant", client.client_id)
            await self.records.revoke_grant(row.grant_id)
            return None
        if row.revoked or row.rotated:
            return None
        return PeteRefreshToken(
            token=refresh_token,
            client_id=row.client_id,
            scopes=row.scopes,
            expires_at=int(row.expires_at),
            resource=row.audience,
            subject=row.subject,
            grant_id=row.grant_id,
            token_hash=row.token_hash,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: PeteRefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if not await self.records.claim_token(refresh_token.token_hash):
            await self.records.revoke_grant(refresh_token.grant_id)
            raise TokenError("invalid_grant", "refresh token was already used")
        return await self._issue(
            client.client_id, refresh_token.grant_id, refresh_token.subject, scopes, refresh_token.token_hash
        )

    async def load_access_token(self, token: str) -> PeteAccessToken | None:
        return access_token_from(token, await self.records.get_token(token, "access"), self.issuer)

    async def revoke_token(self, token: PeteAccessToken | PeteRefreshToken) -> None:
        await self.records.revoke_grant(token.grant_id)
        log.info("revoked grant of client %s", token.client_id)

    async def exchange_identity_assertion(self, client: OAuthClientInformationFull, params: Any) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "The JWT bearer grant is not supported by this server")

    # --- used by the consent page ----------------------------------------------------------
    async def pending(self, request_id: str) -> dict[str, Any] | None:
        return await self.records.get_request(request_id)

    @staticmethod
    def csrf_matches(pending: dict[str, Any], csrf: str) -> bool:
        import hmac

        return hmac.compare_digest(pending["csrf_hash"], digest(csrf))
