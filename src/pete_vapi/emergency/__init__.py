"""The deterministic emergency layer: hazard phrases in the caller's words, found without a model.

It runs on every user turn before the model is asked, so a gas leak is never waiting on a
cold GPU or a small model's judgement. The words are normalised once into tokens (lower case,
fillers and stutters dropped, "C.O." → "co"), with sentence and clause punctuation kept as
"." and "," tokens. Each rule's patterns are short token sequences over stem sets
(a hazard word plus a hazard cue, "smell … gas", "water … pouring"), matched left to right
with bounded gaps, so the work is linear in the tokens and the tokens are bounded by
`MAX_SCAN_CHARS`. A negator cancels a match only inside its own clause and only when it
scopes the hazard ("there is no gas leak"), never across a comma, "but", "and", "so", a full
stop or a new subject ("no the pipe burst", "it's not a drill there is a fire"). When in
doubt a rule errs towards transferring. See docs/safety.md.
"""

from __future__ import annotations

from ._detect import Scan, detect_hazard, scan_turn
from ._patterns import Hazard, HazardRule, TokenPattern
from ._rules import HAZARDS
from ._speech import MAX_SCAN_CHARS, TRANSFER_LINE, normalise_speech, scanned_text

__all__ = [
    "HAZARDS",
    "MAX_SCAN_CHARS",
    "TRANSFER_LINE",
    "Hazard",
    "HazardRule",
    "Scan",
    "TokenPattern",
    "detect_hazard",
    "normalise_speech",
    "scan_turn",
    "scanned_text",
]
