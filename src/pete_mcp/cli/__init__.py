"""`pete` and its subcommands: thin over the rooms below."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
