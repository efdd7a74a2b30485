"""Detection: candidate patterns per token, negation scoped to its clause, resolved hazards dropped."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ._patterns import Hazard, TokenPattern
from ._rules import HAZARDS, RESOLVED
from ._speech import (
    CLAUSE,
    HEDGES,
    NEGATORS,
    NOT_QUANTIFIED,
    RESOLUTION_WINDOW,
    SCOPE_ENDS,
    SCOPE_TOKENS,
    SENTENCE,
    _tokens,
)


# --- negation scope ------------------------------------------------------------------------
def _negation_scopes(tokens: list[str]) -> list[tuple[int, ...]]:
    """For each token, the negators whose scope covers it (at most SCOPE_TOKENS to the right,
    inside the clause, stopping at a conjunction or a new subject)."""
    scopes: list[tuple[int, ...]] = [() for _ in tokens]
    for p, word in enumerate(tokens):
        if word not in NEGATORS:
            continue
        if word == "no" and p + 1 < len(tokens) and tokens[p + 1] in NOT_QUANTIFIED:
            continue  # "no the pipe burst", "no no": an interjection
        for q in range(p + 1, min(len(tokens), p + 1 + SCOPE_TOKENS)):
            token = tokens[q]
            if token in (SENTENCE, CLAUSE) or token in SCOPE_ENDS:
                break
            scopes[q] = (*scopes[q], p)
            if token in HEDGES:
                break
    return scopes


def _negated(tokens: list[str], positions: tuple[int, ...], scopes: list[tuple[int, ...]]) -> bool:
    own = set(positions)  # negators the pattern spells out ("can't breathe", "heat isn't working") don't count
    return any(n not in own for q in positions for n in scopes[q])


def _resolved(tokens: list[str], end: int, steps: list[int]) -> bool:
    for q in range(end + 1, min(len(tokens), end + 1 + RESOLUTION_WINDOW)):
        if tokens[q] == SENTENCE:
            return False
        if any(p.match_at(tokens, q, steps) is not None for p in RESOLVED):
            return True
    return False


# --- matching ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8192)  # bounded: hostile turns can't grow it
def _candidates(token: str) -> tuple[tuple[tuple[TokenPattern, bool], ...], ...]:
    """For each rule in HAZARDS order, the patterns that can start on `token`."""
    keys = [token, *(token[:cut] + "*" for cut in range(min(len(token), 12), 1, -1))]  # stems are short
    return tuple(tuple(c for key in keys for c in rule.index.get(key, ())) for rule in HAZARDS)


def _covered(matches: list[tuple[int, ...]], positions: tuple[int, ...]) -> bool:
    return any(set(m) & set(positions) for m in matches)


def _all_matches(patterns: tuple[TokenPattern, ...], tokens: list[str], steps: list[int]) -> list[tuple[int, ...]]:
    found: list[tuple[int, ...]] = []
    for i in range(len(tokens)):
        for pattern in patterns:
            got = pattern.match_at(tokens, i, steps)
            if got is not None:
                found.append(got)
    return found


def _rule_match(
    r: int,
    tokens: list[str],
    candidates: list[tuple[tuple[tuple[TokenPattern, bool], ...], ...]],
    scopes: list[tuple[int, ...]],
    steps: list[int],
) -> tuple[int, ...] | None:
    rule = HAZARDS[r]
    excluded: list[tuple[int, ...]] | None = None
    for i, options in enumerate(candidates):
        for pattern, strong in options[r]:
            got = pattern.match_at(tokens, i, steps)
            if got is None or _negated(tokens, got, scopes) or _resolved(tokens, got[-1], steps):
                continue
            if not strong:
                if excluded is None:
                    excluded = _all_matches(rule.unless, tokens, steps)
                if _covered(excluded, got):
                    continue
            if rule.requires and all(_negated(tokens, m, scopes) for m in _all_matches(rule.requires, tokens, steps)):
                return None
            return got
    return None


@dataclass(frozen=True, slots=True)
class Scan:
    """One turn read: the hazard (or None), how many tokens were read, how many matcher steps ran."""

    hazard: Hazard | None
    tokens: int
    steps: int


def scan_turn(text: str) -> Scan:
    """`detect_hazard` with the work it did, so tests and the bench can show it stays linear."""
    tokens = _tokens(text)
    steps = [0]
    scopes = _negation_scopes(tokens)
    candidates = [_candidates(token) for token in tokens]
    for r, rule in enumerate(HAZARDS):
        got = _rule_match(r, tokens, candidates, scopes, steps)
        if got is not None:
            matched = " ".join(tokens[got[0] : got[-1] + 1])
            return Scan(Hazard(rule.category, rule.instruction, matched), len(tokens), steps[0])
    return Scan(None, len(tokens), steps[0])


def detect_hazard(text: str) -> Hazard | None:
    """The first hazard the caller's words describe, or None."""
    return scan_turn(text).hazard
