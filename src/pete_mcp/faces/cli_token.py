"""The local CLI's credential: a random token the running gateway writes into its data directory.

`pete prompt` on the same machine, as the same user, reads it and sends its prompt through the
gateway (so the dashboard sees it) even when no `MCP_TOKEN` is set; `pete eval` sends its model
calls and `pete doctor` reads the health checks the same way. It grants only `POST /api/prompt` and
`GET /api/health` (with `?probe=1`), and only to someone who can already read the data directory,
where the whole SQLite store lives; the file is mode 0600 and removed when the gateway stops.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from starlette.requests import Request

__all__ = ["CLI_TOKEN_FILE", "CliToken", "read_cli_token"]

CLI_TOKEN_FILE = "gateway-cli-token"


def read_cli_token(data_dir: Path) -> str | None:
    """The running gateway's CLI token, or None when no gateway wrote one here."""
    try:
        return (data_dir / CLI_TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None


class CliToken:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / CLI_TOKEN_FILE
        self.value: str | None = None

    @contextlib.contextmanager
    def published(self) -> Iterator[None]:
        """Write the token (0600) for the gateway's lifetime; a failure to write only disables it."""
        token = secrets.token_urlsafe(32)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token)
            self.value = token
        except OSError:
            self.value = None
        try:
            yield
        finally:
            if self.value is not None and read_cli_token(self.path.parent) == self.value:
                with contextlib.suppress(OSError):
                    self.path.unlink()
            self.value = None

    def matches(self, request: Request) -> bool:
        if self.value is None:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.value.encode())
