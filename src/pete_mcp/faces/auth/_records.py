"""Sign-in records in Pete's store: clients, pending authorizations and codes, tokens, attempts.

Only portable SQL (`?` parameters, TEXT/INTEGER/REAL) through `Store.execute`/`Store.query`, so
another engine can take the same statements. Every secret is looked up by its SHA-256: the store
never holds a usable code, token or client secret. "Use once" is a claim — `UPDATE ... SET used_by
= <nonce> WHERE used_by IS NULL`, then read who won — which is race-free on any SQL engine.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from pete_mcp.core import Store

__all__ = ["Records", "TokenRow", "digest", "new_secret"]


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)  # 256 bits


@dataclass(frozen=True)
class TokenRow:
    token_hash: str
    kind: str
    grant_id: str
    client_id: str
    subject: str | None
    scopes: list[str]
    audience: str
    expires_at: float
    revoked: bool
    rotated: bool


def _token_row(row: dict[str, Any]) -> TokenRow:
    return TokenRow(
        token_hash=row["token_hash"],
        kind=row["kind"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        subject=row["subject"],
        scopes=row["scopes"].split(),
        audience=row["audience"],
        expires_at=row["expires_at"],
        revoked=row["revoked_at"] is not None,
        rotated=row["used_by"] is not None,
    )


class Records:
    def __init__(self, store: Store) -> None:
        self.store = store

    # --- clients ---------------------------------------------------------------------------
    async def put_client(
        self, client_id: str, kind: str, info: dict[str, Any], secret: str | None, expires_at: float | None = None
    ) -> None:
        await self.store.execute(
            "DELETE FROM oauth_clients WHERE client_id = ?",
            (client_id,),
        )
        await self.store.execute(
            "INSERT INTO oauth_clients(client_id, kind, secret_hash, info, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (client_id, kind, digest(secret) if secret else None, json.dumps(info), time.time(), expires_at),
        )

    async def get_client(self, client_id: str) -> tuple[str, dict[str, Any], str | None, float | None] | None:
        rows = await self.store.query(
            "SELECT kind, info, secret_hash, expires_at FROM oauth_clients WHERE client_id = ?", (client_id,)
        )
        if not rows:
            return None
        row = rows[0]
        return row["kind"], json.loads(row["info"]), row["secret_hash"], row["expires_at"]

    # --- pending authorizations and codes -----------------------------------------------------
    async def add_request(
        self, request_id: str, client_id: str, params: dict[str, Any], csrf: str, ttl_s: float
    ) -> None:
        now = time.time()
        await self.store.execute(
            "INSERT INTO oauth_codes(request_hash, client_id, params, csrf_hash, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (digest(request_id), client_id, json.dumps(params), digest(csrf), now, now + ttl_s),
        )

    async def get_request(self, request_id: str) -> dict[str, Any] | None:
        """A pending authorization that has not expired nor been answered."""
        rows = await self.store.query(
            "SELECT client_id, params, csrf_hash, expires_at FROM oauth_codes "
            "WHERE request_hash = ? AND used_by IS NULL AND code_hash IS NULL",
            (digest(request_id),),
        )
        if not rows or rows[0]["expires_at"] < time.time():
            return None
        row = rows[0]
        return {"client_id": row["client_id"], "params": json.loads(row["params"]), "csrf_hash": row["csrf_hash"]}

    async def set_csrf(self, request_id: str, csrf: str) -> None:
        await self.store.execute(
            "UPDATE oauth_codes SET csrf_hash = ? WHERE request_hash = ?", (digest(csrf), digest(request_id))
        )

    async def close_request(self, request_id: str) -> None:
        await self.store.execute(
            "UPDATE oauth_codes SET used_by = ? WHERE request_hash = ? AND used_by IS NULL",
            ("denied", digest(request_id)),
        )

    async def issue_code(self, request_id: str, code: str, subject: str, scopes: list[str], ttl_s: float) -> bool:
        """Turn a pending authorization into a code; False when it was already answered."""
        await self.store.execute(
            "UPDATE oauth_codes SET code_hash = ?, subject = ?, scopes = ?, expires_at = ? "
            "WHERE request_hash = ? AND code_hash IS NULL AND used_by IS NULL",
            (digest(code), subject, " ".join(scopes), time.time() + ttl_s, digest(request_id)),
        )
        rows = await self.store.query("SELECT code_hash FROM oauth_codes WHERE request_hash = ?", (digest(request_id),))
        return bool(rows) and rows[0]["code_hash"] == digest(code)

    async def get_code(self, code: str) -> dict[str, Any] | None:
        rows = await self.store.query(
            "SELECT request_hash, client_id, params, subject, scopes, expires_at, used_by FROM oauth_codes "
            "WHERE code_hash = ?",
            (digest(code),),
        )
        if not rows:
            return None
        row = rows[0]
        return {**row, "params": json.loads(row["params"]), "scopes": row["scopes"].split()}

    async def claim_code(self, code: str) -> str | None:
        """Mark a code used; returns the grant id when this caller won, None when it was used before."""
        grant_id = new_secret("g_")
        await self.store.execute(
            "UPDATE oauth_codes SET used_by = ? WHERE code_hash = ? AND used_by IS NULL", (grant_id, digest(code))
        )
        rows = await self.store.query("SELECT used_by FROM oauth_codes WHERE code_hash = ?", (digest(code),))
        return grant_id if rows and rows[0]["used_by"] == grant_id else None

    # --- tokens ----------------------------------------------------------------------------
    async def add_token(
        self,
        token: str,
        kind: str,
        *,
        grant_id: str,
        client_id: str,
        subject: str | None,
        scopes: list[str],
        audience: str,
        ttl_s: float,
        rotated_from: str | None = None,
    ) -> float:
        now = time.time()
        await self.store.execute(
            "INSERT INTO oauth_tokens(token_hash, kind, grant_id, client_id, subject, scopes, audience, "
            "created_at, expires_at, rotated_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                digest(token),
                kind,
                grant_id,
                client_id,
                subject,
                " ".join(scopes),
                audience,
                now,
                now + ttl_s,
                rotated_from,
            ),
        )
        return now + ttl_s

    async def get_token(self, token: str, kind: str) -> TokenRow | None:
        rows = await self.store.query(
            "SELECT * FROM oauth_tokens WHERE token_hash = ? AND kind = ?", (digest(token), kind)
        )
        return _token_row(rows[0]) if rows else None

    async def claim_token(self, token_hash: str) -> bool:
        """Mark a refresh token rotated; True when this caller won."""
        nonce = new_secret()
        await self.store.execute(
            "UPDATE oauth_tokens SET used_by = ? WHERE token_hash = ? AND used_by IS NULL", (nonce, token_hash)
        )
        rows = await self.store.query("SELECT used_by FROM oauth_tokens WHERE token_hash = ?", (token_hash,))
        return bool(rows) and rows[0]["used_by"] == nonce

    async def revoke_grant(self, grant_id: str) -> None:
        await self.store.execute(
            "UPDATE oauth_tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL", (time.time(), grant_id)
        )

    async def purge_expired(self) -> None:
        now = time.time()
        await self.store.execute("DELETE FROM oauth_tokens WHERE expires_at < ?", (now - 86400,))
        await self.store.execute("DELETE FROM oauth_codes WHERE expires_at < ?", (now - 86400,))
        await self.store.execute("DELETE FROM signin_attempts WHERE at < ?", (now - 86400,))
