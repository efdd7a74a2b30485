"""Client ID Metadata Documents: a client whose client_id is an HTTPS URL describes itself there.

The MCP SDK's client speaks CIMD (`OAuthClientProvider(client_metadata_url=...)`) but its server
has no fetcher, so this is the small addition: the provider's `get_client` calls `fetch` for a
URL client_id, and the SDK's authorize/token handlers take it from there. The URL comes from a
stranger, so: HTTPS only; no user info, fragment or dot segments; the host resolved once and
every address public (no private, loopback, link-local, multicast or reserved one); the request
sent to that address (so DNS cannot change under it) with the name kept for TLS; no redirects; a
size and a time limit; an optional host allow-list. `allow_loopback` (tests only) admits
127.0.0.1/::1 and plain http on them.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio
import httpx
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import ValidationError

__all__ = ["CimdError", "CimdFetcher", "CimdPolicy", "is_url_client_id"]

log = logging.getLogger(__name__)

ALLOWED_GRANTS = {"authorization_code", "refresh_token"}


class CimdError(Exception):
    """The client_id URL or its document is not acceptable (the message says why)."""


@dataclass(frozen=True)
class CimdPolicy:
    max_bytes: int = 5120
    timeout_s: float = 5.0
    cache_s: float = 3600.0
    allowed_hosts: frozenset[str] = field(default_factory=frozenset[str])
    allow_loopback: bool = False


def is_url_client_id(client_id: str) -> bool:
    return client_id.startswith(("https://", "http://"))


def _check_url(url: str, policy: CimdPolicy) -> tuple[str, str, int]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    loopback_http = parts.scheme == "http" and policy.allow_loopback and host in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not loopback_http:
        raise CimdError("a client_id URL must use https.")
    if not host or parts.username or parts.password:
        raise CimdError("a client_id URL needs a host and no user info.")
    if parts.fragment or parts.path in ("", "/") or any(seg in (".", "..") for seg in parts.path.split("/")):
        raise CimdError("a client_id URL needs a path, without '.' or '..' segments or a fragment.")
    if policy.allowed_hosts and host not in policy.allowed_hosts:
        raise CimdError(f"client metadata from {host} is not on OAUTH_CIMD_ALLOWED_HOSTS.")
    return parts.scheme, host, parts.port or (443 if parts.scheme == "https" else 80)


def _acceptable(address: str, policy: CimdPolicy) -> bool:
    ip = ipaddress.ip_address(address)
    if policy.allow_loopback and ip.is_loopback:
        return True
    return ip.is_global and not ip.is_multicast


async def _resolve(host: str, port: int, policy: CimdPolicy) -> str:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise CimdError(f"cannot resolve {host}: {exc}.") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses or not all(_acceptable(a, policy) for a in addresses):
        raise CimdError(f"{host} resolves to a private, loopback or reserved address: refused.")
    return addresses[0]


class CimdFetcher:
    """Fetches and validates one client's metadata document. `http` is injectable for tests (TLS trust)."""

    def __init__(self, policy: CimdPolicy, http: httpx.AsyncClient | None = None) -> None:
        self.policy = policy
        self._http = http

    async def fetch(self, url: str) -> OAuthClientInformationFull:
        scheme, host, port = _check_url(url, self.policy)
        address = await _resolve(host, port, self.policy)
        parts = urlsplit(url)
        literal = f"[{address}]" if ":" in address else address
        target = parts._replace(netloc=f"{literal}:{port}").geturl()
        http = self._http or httpx.AsyncClient(trust_env=False)
        try:
            body = await self._get(http, target, host, port, scheme)
        finally:
            if self._http is None:
                await http.aclose()
        return _validate(url, body)

    async def _get(self, http: httpx.AsyncClient, target: str, host: str, port: int, scheme: str) -> bytes:
        default_port = 443 if scheme == "https" else 80
        headers = {"Host": host if port == default_port else f"{host}:{port}", "Accept": "application/json"}
        request = http.build_request("GET", target, headers=headers, extensions={"sni_hostname": host})
        chunks: list[bytes] = []
        size = 0
        try:
            with anyio.fail_after(self.policy.timeout_s):
                response = await http.send(request, stream=True, follow_redirects=False)
                try:
                    if response.status_code != 200:
                        raise CimdError(f"the client metadata document answered HTTP {response.status_code}.")
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self.policy.max_bytes:
                            raise CimdError(f"the client metadata document is over {self.policy.max_bytes} bytes.")
                        chunks.append(chunk)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise CimdError(f"the client metadata document took over {self.policy.timeout_s} s.") from None
        except httpx.HTTPError as exc:
            raise CimdError(f"cannot fetch the client metadata document: {type(exc).__name__}.") from None
        return b"".join(chunks)


def _validate(url: str, body: bytes) -> OAuthClientInformationFull:
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CimdError("the client metadata document is not JSON.") from None
    if not isinstance(doc, dict):
        raise CimdError("the client metadata document is not a JSON object.")
    if doc.get("client_id") != url:
        raise CimdError("the document's client_id is not the URL it was fetched from.")
    if "client_secret" in doc or "client_secret_expires_at" in doc:
        raise CimdError("a client metadata document must not carry a client secret.")
    method = doc.get("token_endpoint_auth_method") or "none"
    if method != "none":
        raise CimdError(f"token_endpoint_auth_method {method!r} is not supported for URL clients; use 'none'.")
    grants = doc.get("grant_types") or ["authorization_code"]
    if not isinstance(grants, list) or "authorization_code" not in grants or set(grants) - ALLOWED_GRANTS:
        raise CimdError("grant_types must include authorization_code and only refresh_token besides.")
    if not doc.get("redirect_uris"):
        raise CimdError("the client metadata document has no redirect_uris.")
    try:
        return OAuthClientInformationFull.model_validate(
            {**doc, "token_endpoint_auth_method": "none", "grant_types": grants, "client_secret": None}
        )
    except ValidationError as exc:
        raise CimdError(f"the client metadata document is invalid: {exc.errors()[0]['msg']}.") from None
