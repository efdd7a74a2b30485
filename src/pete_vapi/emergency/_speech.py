"""Speech to tokens: the bounded slice of a turn that is read, fillers and stutters dropped,
"C.O." → "co", sentence and clause punctuation kept as "." and "," tokens."""

from __future__ import annotations

import re

TRANSFER_LINE = "I'm connecting you to our on-call team now."

# Only this much of a turn is read: the first HEAD and the last (newest) TAIL characters.
# A minute of speech is ~900 characters, so real turns are read whole; a hostile one is cut.
HEAD_CHARS = 500
TAIL_CHARS = 1500
MAX_SCAN_CHARS = HEAD_CHARS + TAIL_CHARS

SENTENCE, CLAUSE = ".", ","


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


FILLERS = _words("um umm uh uhh uhm er erm ah ahh hmm hm mm mhm like")
NEGATORS = _words(
    "no not dont doesnt didnt isnt arent wasnt werent never without nothing cant cannot wont aint hasnt havent "
    "none nobody neither nor"
)
# Words that end a negator's scope: conjunctions and the start of a new clause without punctuation.
SCOPE_ENDS = _words(
    "but and so because cause cuz though although plus then or except when while if theres there i im ive id "
    "we its it he hes she shes they theyre you youre this that now wait actually oh please help yes yeah ok "
    "okay well"
)
# Verbs whose negation is a hedge about the speaker, not about the hazard ("I don't know, ...").
HEDGES = _words("know sure think mean care remember understand")
# After "no", these show an interjection ("no the pipe burst"), not a quantifier ("no gas leak").
NOT_QUANTIFIED = _words("the a an my our your his her their this that no")
SCOPE_TOKENS = 4
RESOLUTION_WINDOW = 12

_APOSTROPHES = str.maketrans("", "", "'’‘`´")
_ACRONYM = re.compile(r"\b([a-z])\. ?([a-z])\b\.?")  # "c.o." / "c. o" → "co"; fixed width, no backtracking
_TOKEN = re.compile(r"[a-z0-9]+|[.!?]|[,;:—–]")


# --- normalisation -------------------------------------------------------------------------
def scanned_text(text: str) -> str:
    """The part of a turn the layer reads: all of it up to MAX_SCAN_CHARS, else both ends."""
    if len(text) <= MAX_SCAN_CHARS:
        return text
    return text[:HEAD_CHARS] + " . " + text[-TAIL_CHARS:]


def _tokens(text: str) -> list[str]:
    lowered = _ACRONYM.sub(r"\1\2", scanned_text(text).lower().translate(_APOSTROPHES))
    tokens: list[str] = []
    for match in _TOKEN.finditer(lowered):
        word = match.group(0)
        if word in ".!?":
            word = SENTENCE
        elif word in ",;:—–":
            word = CLAUSE
        elif word in FILLERS:
            continue
        if tokens and tokens[-1] == word:  # stutters and repeats: "i i smell", "no no no"
            continue
        if word in (SENTENCE, CLAUSE) and (not tokens or tokens[-1] in (SENTENCE, CLAUSE)):
            if tokens and word == SENTENCE:
                tokens[-1] = SENTENCE
            continue
        tokens.append(word)
    return tokens


def normalise_speech(text: str) -> str:
    """Lower-case words with fillers and repeats dropped; "." ends a sentence and "," a clause.

    `don't` → `dont`, "C.O." → "co", "um, uh, I I smell gas!" → "i smell gas ."
    """
    return " ".join(_tokens(text))
