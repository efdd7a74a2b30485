"""Operator accounts (argon2id password hashes) and sign-in with a rate limit per account and address.

`pete users add/list/remove` manage the accounts; the consent page signs an operator in. A wrong
password and an unknown name take the same time and get the same answer; every attempt is logged
and recorded (name, address, outcome — never the password). After `max_failures` failures in
`window_s` an account is locked for the rest of the window; an address after four times that.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pete_mcp.core import InputError, Store

from .scopes import ALL_SCOPES

__all__ = ["Operator", "Operators", "SignInRefused"]

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 12
ADDRESS_FACTOR = 4


@dataclass(frozen=True)
class Operator:
    name: str
    scopes: list[str]
    created_at: float


class SignInRefused(Exception):
    """Wrong name or password (`locked` False), or too many failures (`locked` True)."""

    def __init__(self, message: str, *, locked: bool = False, retry_after_s: int = 0) -> None:
        super().__init__(message)
        self.locked = locked
        self.retry_after_s = retry_after_s


class Operators:
    def __init__(self, store: Store, *, max_failures: int = 5, window_s: float = 900.0) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window_s = window_s
        self._hasher = PasswordHasher()
        self._dummy = self._hasher.hash("not a password of anyone's")

    # --- accounts --------------------------------------------------------------------------
    async def add(self, name: str, password: str, scopes: list[str] | None = None) -> Operator:
        """Create or replace an account. Raises InputError naming what is wrong."""
        if not NAME.match(name):
            raise InputError("name: use 1-64 letters, digits, '.', '_', '@' or '-'.")
        if len(password) < MIN_PASSWORD:
            raise InputError(f"password: use at least {MIN_PASSWORD} characters.")
        chosen = list(scopes or ALL_SCOPES)
        if unknown := [s for s in chosen if s not in ALL_SCOPES]:
            raise InputError(f"scopes: unknown {', '.join(unknown)}; choose from {', '.join(ALL_SCOPES)}.")
        hashed = await anyio.to_thread.run_sync(self._hasher.hash, password)
        now = time.time()
        await self.store.execute("DELETE FROM operator_users WHERE name = ?", (name,))
        await self.store.execute(
            "INSERT INTO operator_users(name, password_hash, scopes, created_at) VALUES (?, ?, ?, ?)",
            (name, hashed, " ".join(chosen), now),
        )
        return Operator(name, chosen, now)

    async def list(self) -> list[Operator]:
        rows = await self.store.query("SELECT name, scopes, created_at FROM operator_users ORDER BY name")
        return [Operator(r["name"], r["scopes"].split(), r["created_at"]) for r in rows]

    async def remove(self, name: str) -> bool:
        found = await self.store.query("SELECT 1 FROM operator_users WHERE name = ?", (name,))
        await self.store.execute("DELETE FROM operator_users WHERE name = ?", (name,))
        return bool(found)

    # --- sign-in ---------------------------------------------------------------------------
    async def sign_in(self, name: str, password: str, address: str) -> Operator:
        """The operator, or SignInRefused. Rate-limited per account and per address."""
        since = time.time() - self.window_s
        by_name = await self._failures("name = ?", name, since)
        by_address = await self._failures("address = ?", address, since)
        if by_name >= self.max_failures or by_address >= self.max_failures * ADDRESS_FACTOR:
            log.warning("sign-in refused (rate limit) for %r from %s", name, address)
            raise SignInRefused(
                "Too many failed sign-ins: wait and try again.", locked=True, retry_after_s=int(self.window_s)
            )
        rows = await self.store.query(
            "SELECT name, password_hash, scopes, created_at FROM operator_users WHERE name = ?", (name,)
        )
        stored = rows[0]["password_hash"] if rows else self._dummy
        ok = await anyio.to_thread.run_sync(self._verify, stored, password) and bool(rows)
        await self.store.execute(
            "INSERT INTO signin_attempts(at, name, address, ok) VALUES (?, ?, ?, ?)",
            (time.time(), name[:64], address[:64], int(ok)),
        )
        if not ok:
            log.warning("sign-in failed for %r from %s", name[:64], address)
            raise SignInRefused("Wrong name or password.")
        log.info("operator %r signed in from %s", name, address)
        row = rows[0]
        return Operator(row["name"], row["scopes"].split(), row["created_at"])

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _failures(self, where: str, value: str, since: float) -> int:
        rows = await self.store.query(
            f"SELECT COUNT(*) AS n FROM signin_attempts WHERE {where} AND ok = 0 AND at > ?", (value, since)
        )
        return int(rows[0]["n"])
