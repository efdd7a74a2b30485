"""Authenticate requests from VAPI: bearer token, HMAC signature, or the legacy X-Vapi-Secret.

Server messages (`/vapi/webhook`) use the scheme `VAPI_AUTH` names. The Custom LLM route
cannot be HMAC-signed by VAPI (a custom-llm credential is an API key or extra headers), so
it accepts `Authorization: Bearer <k>` (or a bare `<k>`) or `X-Vapi-Secret: <k>` with
`VAPI_LLM_SECRET` (default `VAPI_SECRET`). Header checks run before the body is read, so a
stranger gets a 401 without Pete reading a byte of it; HMAC signatures (which need the raw
body) are checked right after, before any parsing. Every comparison is constant-time, and an
unset secret fails closed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pete_mcp.core.errors import AuthError
from pete_mcp.core.settings import Settings

__all__ = ["LlmAuth", "ReplayGuard", "WebhookAuth", "verify_vapi_request"]


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _bearer_value(headers: Mapping[str, str]) -> str:
    raw = headers.get("authorization", "").strip()
    scheme, _, rest = raw.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest else raw


@dataclass
class ReplayGuard:
    """Remembers HMAC signatures inside the skew window, so a captured request cannot be resent."""

    window_s: float
    max_entries: int = 100_000
    _seen: dict[str, float] = field(default_factory=dict)

    def first_use(self, signature: str, now: float) -> bool:
        """True the first time `signature` is seen inside the window; False for a replay."""
        if len(self._seen) >= self.max_entries or (self._seen and next(iter(self._seen.values())) < now):
            self._seen = {s: t for s, t in self._seen.items() if t >= now}
        if signature in self._seen:
            return False
        self._seen[signature] = now + 2 * self.window_s
        return True


class WebhookAuth:
    """The `/vapi/webhook` check, in two steps: `check_headers` (no body), then `check_body`."""

    def __init__(
        self,
        scheme: str,
        secret: str | None,
        *,
        skew_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scheme = scheme
        self._secret = secret
        self._skew_s = skew_s
        self._clock = clock
        self._replays = ReplayGuard(skew_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookAuth:
        secret = settings.vapi_secret.get_secret_value() if settings.vapi_secret else None
        return cls(settings.vapi_auth, secret, skew_s=settings.vapi_hmac_skew_s)

    @property
    def needs_body(self) -> bool:
        return self.scheme == "hmac"

    @property
    def authenticates(self) -> bool:
        """True when a request that passed the checks is known to come from VAPI (a scheme and a secret)."""
        return self.scheme != "none" and bool(self._secret)

    def check_headers(self, headers: Mapping[str, str]) -> None:
        """Everything that does not need the body.

        Raises:
            AuthError: missing or wrong credential, or an HMAC timestamp outside the window.
        """
        if self.scheme == "none":
            return
        if not self._secret:
            raise AuthError(f"VAPI_AUTH={self.scheme} but VAPI_SECRET is not set; refusing every request.")
        if self.scheme == "bearer":
            if not _same(_bearer_value(headers), self._secret):
                raise AuthError("missing or wrong VAPI bearer token.")
        elif self.scheme == "secret":
            if not _same(headers.get("x-vapi-secret", "").strip(), self._secret):
                raise AuthError("missing or wrong X-Vapi-Secret header.")
        elif self.scheme == "hmac":
            signature, stamp = headers.get("x-signature", ""), headers.get("x-timestamp", "")
            if not signature or not stamp:
                raise AuthError("missing x-signature or x-timestamp header.")
            try:
                seconds = float(stamp)
            except ValueError:
                raise AuthError("x-timestamp is not a number.") from None
            seconds = seconds / 1000 if seconds > 1e11 else seconds  # VAPI's unit is not documented: s or ms
            if abs(self._clock() - seconds) > self._skew_s:
                raise AuthError("x-timestamp is outside the accepted clock-skew window.")
        else:
            raise AuthError(f"unknown VAPI_AUTH scheme {self.scheme!r}.")

    def check_body(self, headers: Mapping[str, str], body: bytes) -> None:
        """The HMAC signature over `{timestamp}.{body}` (sha256, hex, optional `sha256=` prefix), once.

        Raises:
            AuthError: wrong signature, or a signature already used (a replay).
        """
        if self.scheme != "hmac":
            return
        assert self._secret is not None  # check_headers ran first
        stamp = headers.get("x-timestamp", "")
        signature = headers.get("x-signature", "").strip().removeprefix("sha256=")
        expected = hmac.new(self._secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not _same(signature.lower(), expected):
            raise AuthError("the VAPI HMAC signature does not match the body.")
        if not self._replays.first_use(signature.lower(), self._clock()):
            raise AuthError("this VAPI request was already received (replayed signature).")


class LlmAuth:
    """The Custom LLM route's check: one API key as `Authorization` (Bearer or bare) or `X-Vapi-Secret`."""

    def __init__(self, enabled: bool, secret: str | None) -> None:
        self.enabled = enabled
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmAuth:
        """On when VAPI auth is on, or when an LLM key is set on its own."""
        chosen = settings.vapi_llm_secret or settings.vapi_secret
        enabled = settings.vapi_auth != "none" or settings.vapi_llm_secret is not None
        return cls(enabled, chosen.get_secret_value() if chosen else None)

    @property
    def key(self) -> str | None:
        """The key VAPI must send (for Jamie's assistant configuration; never logged)."""
        return self._secret

    def check_headers(self, headers: Mapping[str, str]) -> None:
        """Raises:
        AuthError: no key, or a wrong one.
        """
        if not self.enabled:
            return
        if not self._secret:
            raise AuthError("VAPI auth is on but neither VAPI_LLM_SECRET nor VAPI_SECRET is set.")
        offered = [v for v in (_bearer_value(headers), headers.get("x-vapi-secret", "").strip()) if v]
        # Compare every offered value, so timing does not reveal which header held the key.
        matches = [_same(v, self._secret) for v in offered]
        if not any(matches):
            raise AuthError("missing or wrong credential for the VAPI Custom LLM route.")


def verify_vapi_request(auth: WebhookAuth | LlmAuth, headers: Mapping[str, str], body: bytes | None = None) -> None:
    """Check one request completely (headers, then the body when given and the scheme signs it).

    Raises:
        AuthError: the request is not from VAPI (or is a replay).
    """
    auth.check_headers(headers)
    if isinstance(auth, WebhookAuth) and body is not None:
        auth.check_body(headers, body)
