"""DATABASE_URL for people: the password never shows."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact_url"]


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***` (for messages and logs)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable DATABASE_URL>"
    if parts.scheme not in ("postgres", "postgresql") or not parts.netloc:
        # A libpq keyword string or a typo may hold the password anywhere: show none of it.
        return "<DATABASE_URL, not a postgresql:// URL>"
    if password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
