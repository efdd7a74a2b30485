"""Token patterns: short sequences over stem sets, matched left to right with bounded gaps."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._speech import CLAUSE, SENTENCE


@dataclass(frozen=True, slots=True)
class Hazard:
    """A match: the hazard's category, what to tell the caller, and the words that matched."""

    category: str
    instruction: str
    matched: str


# --- token patterns ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Element:
    kind: str  # "word" | "gap" | "not_next" | "not_prev" | "start"
    words: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    gap: int = 0

    def accepts(self, token: str) -> bool:
        return token in self.words or any(token.startswith(p) for p in self.prefixes)


@dataclass(frozen=True, slots=True)
class TokenPattern:
    """A compiled pattern: `a|b*` alternatives (`*` = stem), `~N` skip ≤ N words in the sentence,
    `-a|b` the next word is none of these, `<a|b` (first) the word before is none of these,
    `^` (first) at the start of a clause."""

    source: str
    elements: tuple[_Element, ...]
    first: _Element  # the first element that reads a word: what the index and the quick check look at

    @classmethod
    def compile(cls, source: str) -> TokenPattern:
        elements: list[_Element] = []
        for part in source.split():
            kind = "word"
            if part == "^":
                elements.append(_Element("start"))
                continue
            if part.startswith("~"):
                elements.append(_Element("gap", gap=int(part[1:])))
                continue
            if part[0] in "-<":
                kind, part = ("not_next" if part[0] == "-" else "not_prev"), part[1:]
            alternatives = part.split("|")
            words = frozenset(a for a in alternatives if not a.endswith("*"))
            prefixes = tuple(a[:-1] for a in alternatives if a.endswith("*"))
            elements.append(_Element(kind, words, prefixes))
        return cls(source, tuple(elements), next(e for e in elements if e.kind == "word"))

    def match_at(self, tokens: list[str], start: int, steps: list[int]) -> tuple[int, ...] | None:
        """Token positions the words matched when the pattern starts at `start`, or None."""
        if start >= len(tokens) or not self.first.accepts(tokens[start]):
            return None
        return _match(self.elements, 0, tokens, start, (), steps)


def _match(
    elements: tuple[_Element, ...], k: int, tokens: list[str], i: int, got: tuple[int, ...], steps: list[int]
) -> tuple[int, ...] | None:
    steps[0] += 1
    if k == len(elements):
        return got
    element = elements[k]
    if element.kind == "start":
        ok = i == 0 or tokens[i - 1] in (SENTENCE, CLAUSE)
        return _match(elements, k + 1, tokens, i, got, steps) if ok else None
    if element.kind == "not_prev":
        ok = i == 0 or not element.accepts(tokens[i - 1])
        return _match(elements, k + 1, tokens, i, got, steps) if ok else None
    if element.kind == "not_next":
        ok = i >= len(tokens) or not element.accepts(tokens[i])
        return _match(elements, k + 1, tokens, i, got, steps) if ok else None
    if element.kind == "gap":
        for skip in range(element.gap + 1):  # bounded: at most gap + 1 branches
            j = i + skip
            if j > len(tokens) or (skip and tokens[j - 1] == SENTENCE):
                return None
            found = _match(elements, k + 1, tokens, j, got, steps)
            if found is not None:
                return found
        return None
    if i < len(tokens) and element.accepts(tokens[i]):
        return _match(elements, k + 1, tokens, i + 1, (*got, i), steps)
    return None


def _p(*sources: str) -> tuple[TokenPattern, ...]:
    return tuple(TokenPattern.compile(s) for s in sources)


@dataclass(frozen=True, slots=True)
class HazardRule:
    """One category: `strong` patterns always count; `patterns` count unless an `unless` match
    overlaps them (a look-alike such as "gas bill"); `requires` must also hold in the turn."""

    category: str
    instruction: str
    strong: tuple[TokenPattern, ...] = ()
    patterns: tuple[TokenPattern, ...] = ()
    unless: tuple[TokenPattern, ...] = ()
    requires: tuple[TokenPattern, ...] = ()
    index: dict[str, tuple[tuple[TokenPattern, bool], ...]] = field(default_factory=dict, compare=False)
