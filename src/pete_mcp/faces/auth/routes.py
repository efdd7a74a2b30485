"""The built-in authorization server's routes, made of the MCP SDK's handlers, and the `auth` face.

RFC 8414 metadata, /authorize, /token, /register (RFC 7591) and /revoke are the SDK's handlers
over `PeteAuthProvider`; the consent page is Pete's. Two differences from the SDK's
`create_auth_routes`: client secrets are stored hashed, so the client authenticator compares
hashes (`HashedSecretAuthenticator`), and the metadata says Pete accepts Client ID Metadata
Documents and sends `iss` with each authorization response (RFC 9207).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import unquote

import httpx
from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.metadata import MetadataHandler, ProtectedResourceMetadataHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.revoke import RevocationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.routes import build_metadata, build_resource_metadata_url
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE, RequestBodyLimitMiddleware
from mcp.shared.auth import OAuthClientInformationFull, OAuthMetadata, ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import ASGIApp

from pete_mcp.core import ConfigError
from pete_mcp.gateway import Core

from .._face import Face
from ._records import Records, digest, new_secret
from .cimd import CimdFetcher, CimdPolicy
from .consent import ConsentPage
from .provider import PeteAuthProvider
from .scopes import ALL_SCOPES
from .users import Operators
from .verifiers import AuthPlan, auth_plan

__all__ = ["HashedSecretAuthenticator", "auth_face", "build_provider", "protected_resource_routes"]


def _cors(app: ASGIApp, methods: list[str]) -> ASGIApp:
    return CORSMiddleware(app, allow_origins="*", allow_methods=methods, allow_headers=["mcp-protocol-version"])


def _limited(handler: Any) -> ASGIApp:
    return RequestBodyLimitMiddleware(request_response(handler), DEFAULT_MAX_REQUEST_BODY_SIZE)


async def _presented_secret(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return unquote(decoded.split(":", 1)[1]) if ":" in decoded else None
    value = (await request.form()).get("client_secret")
    return value if isinstance(value, str) else None


class _PresentedSecretView:
    """The provider as the SDK's authenticator should see it: the stored hash swapped for the
    presented secret when they match, and for a random one when they do not."""

    def __init__(self, provider: PeteAuthProvider, presented: str | None) -> None:
        self.provider = provider
        self.presented = presented

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        client = await self.provider.get_client(client_id)
        if client is None or not client.client_secret:
            return client
        stored = client.client_secret.removeprefix("sha256:")
        ok = self.presented is not None and hmac.compare_digest(digest(self.presented), stored)
        return client.model_copy(update={"client_secret": self.presented if ok else new_secret()})


class HashedSecretAuthenticator(ClientAuthenticator):
    """The SDK's client authentication, against hashed client secrets."""

    def __init__(self, provider: PeteAuthProvider) -> None:
        super().__init__(cast(Any, provider))
        self.pete_provider = provider

    async def authenticate_request(self, request: Request) -> OAuthClientInformationFull:
        view = _PresentedSecretView(self.pete_provider, await _presented_secret(request))
        return await ClientAuthenticator(cast(Any, view)).authenticate_request(request)


def protected_resource_routes(plan: AuthPlan) -> list[BaseRoute]:
    """RFC 9728 metadata for /mcp naming the authorization server in use and every scope."""
    if plan.issuer is None:
        return []
    metadata = ProtectedResourceMetadata.model_validate(  # from strings: a path-less issuer keeps no slash
        {
            "resource": plan.resource,
            "authorization_servers": [plan.issuer],
            "scopes_supported": list(ALL_SCOPES),
            "resource_name": "Pete",
        }
    )
    path = str(build_resource_metadata_url(AnyHttpUrl(plan.resource))).split("://", 1)[1]
    path = path[path.index("/") :]
    handler = ProtectedResourceMetadataHandler(metadata)
    return [Route(path, _cors(request_response(handler.handle), ["GET", "OPTIONS"]), methods=["GET", "OPTIONS"])]


def build_provider(core: Core, *, cimd_http: httpx.AsyncClient | None = None) -> PeteAuthProvider:
    settings = core.settings
    plan = auth_plan(settings)
    hosts = frozenset(h.strip().lower() for h in settings.oauth_cimd_allowed_hosts.split(",") if h.strip())
    policy = CimdPolicy(
        max_bytes=settings.oauth_cimd_max_bytes,
        timeout_s=settings.oauth_cimd_timeout_s,
        cache_s=settings.oauth_cimd_cache_s,
        allowed_hosts=hosts,
        allow_loopback=settings.oauth_cimd_allow_loopback,
    )
    return PeteAuthProvider(
        Records(core.store),
        issuer=plan.base,
        resource=plan.resource,
        access_ttl_s=settings.oauth_access_token_ttl_s,
        refresh_ttl_s=settings.oauth_refresh_token_ttl_s,
        cimd=CimdFetcher(policy, cimd_http) if settings.oauth_cimd else None,
    )


def auth_face(core: Core, *, cimd_http: httpx.AsyncClient | None = None) -> Face:
    """The built-in authorization server. Raises ConfigError unless the plan's mode is `builtin`."""
    plan = auth_plan(core.settings)
    if plan.mode != "builtin":
        raise ConfigError("the built-in OAuth server is off: set OAUTH_SERVER=true or PUBLIC_URL.")
    provider = build_provider(core, cimd_http=cimd_http)
    operators = Operators(
        core.store, max_failures=core.settings.oauth_signin_max_failures, window_s=core.settings.oauth_signin_window_s
    )
    consent = ConsentPage(provider, operators)
    registration = ClientRegistrationOptions(
        enabled=True, valid_scopes=list(ALL_SCOPES), default_scopes=list(ALL_SCOPES)
    )
    built = build_metadata(AnyHttpUrl(plan.base), None, registration, RevocationOptions(enabled=True))
    metadata = OAuthMetadata.model_validate(  # RFC 8414/9207 compare issuers as strings: keep it exactly plan.base
        {
            **built.model_dump(mode="json", exclude_none=True),
            "issuer": plan.base,
            "client_id_metadata_document_supported": provider.cimd is not None,
            "authorization_response_iss_parameter_supported": True,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        }
    )
    authenticator = HashedSecretAuthenticator(provider)
    sdk_provider = cast(Any, provider)
    routes: list[BaseRoute] = [
        Route(
            "/.well-known/oauth-authorization-server",
            _cors(request_response(MetadataHandler(metadata).handle), ["GET", "OPTIONS"]),
            methods=["GET", "OPTIONS"],
        ),
        Route("/authorize", _limited(AuthorizationHandler(sdk_provider).handle), methods=["GET", "POST"]),
        Route("/authorize/consent", consent.show, methods=["GET"]),
        Route("/authorize/consent", _limited(consent.answer), methods=["POST"]),
        Route(
            "/token",
            _cors(_limited(TokenHandler(sdk_provider, authenticator).handle), ["POST", "OPTIONS"]),
            methods=["POST", "OPTIONS"],
        ),
        Route(
            "/register",
            _cors(_limited(RegistrationHandler(sdk_provider, options=registration).handle), ["POST", "OPTIONS"]),
            methods=["POST", "OPTIONS"],
        ),
        Route(
            "/revoke",
            _cors(_limited(RevocationHandler(sdk_provider, authenticator).handle), ["POST", "OPTIONS"]),
            methods=["POST", "OPTIONS"],
        ),
    ]

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        await provider.records.purge_expired()
        yield

    return Face("auth", routes, lifespan=lifespan)
