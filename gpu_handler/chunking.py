"""Batch token deltas into sentence-sized chunks, with a time cap.

Each worker `yield` costs one HTTP post to RunPod (awaited before the generator goes on), so
sending every token would make the post round-trip the bottleneck. Text is held until a
sentence ends, `max_chars` pile up, or the oldest held text has waited `max_delay_s`. The first
non-blank text goes out at once: a voice caller's first words are never held back.

Pure logic with an explicit clock value, so it is tested without timers.
"""

from __future__ import annotations

import re

__all__ = ["SentenceChunker"]

# A sentence end: terminal punctuation (plus closing quotes/brackets) then space or the end of the
# held text, or a line break. Tokens usually end at the punctuation, so "end of held text" matters.
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?:\s+|$)|\n+")


class SentenceChunker:
    """Decides when held text becomes a chunk. Feed `add()`, honour `deadline()`, end with `flush()`."""

    def __init__(self, *, max_chars: int, max_delay_s: float) -> None:
        self._max_chars = max_chars
        self._max_delay_s = max_delay_s
        self._held = ""
        self._held_since: float | None = None
        self._sent_any = False

    def add(self, text: str, now: float) -> str | None:
        """Take one delta; return the text to send now, or None to keep holding."""
        if not text:
            return None
        if not self._held:
            self._held_since = now
        self._held += text
        if not self._sent_any:
            return self._take_all() if self._held.strip() else None
        if len(self._held) >= self._max_chars or self._overdue(now):
            return self._take_all()
        return self._take_through_last_sentence_end(now)

    def deadline(self) -> float | None:
        """When the held text must go out (clock value), or None if nothing is held."""
        if self._held_since is None:
            return None
        return self._held_since + self._max_delay_s

    def due(self, now: float) -> str | None:
        """The held text if its deadline has passed, else None."""
        return self._take_all() if self._held and self._overdue(now) else None

    def flush(self) -> str | None:
        """Whatever is still held (at the end of the reply)."""
        return self._take_all() if self._held else None

    def _overdue(self, now: float) -> bool:
        return self._held_since is not None and now - self._held_since >= self._max_delay_s

    def _take_all(self) -> str:
        text, self._held, self._held_since = self._held, "", None
        self._sent_any = True
        return text

    def _take_through_last_sentence_end(self, now: float) -> str | None:
        last_end = None
        for match in _SENTENCE_END.finditer(self._held):
            last_end = match.end()
        if last_end is None or not self._held[:last_end].strip():
            return None
        text, rest = self._held[:last_end], self._held[last_end:]
        self._held = rest
        self._held_since = now if rest else None
        return text
