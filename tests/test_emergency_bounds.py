"""The emergency layer reads a bounded part of each turn and does work linear in it, whatever the caller says."""

from __future__ import annotations

import math

import pytest

from pete_vapi.emergency import HAZARDS, MAX_SCAN_CHARS, TokenPattern, detect_hazard, scan_turn, scanned_text

HOSTILE = {
    "outlet x 8000 (56 KB)": "outlet " * 8000,
    "1 MB of a": "a" * 1_000_000,
    "deep negators": "no not " * 50_000 + "gas leak",
    "many distinct words": " ".join(f"w{i}" for i in range(100_000)),
    "cue soup": "smell the gas bill outlet sparks no water pouring fire drill " * 3000,
    "punctuation": ", . ! ? ; :" * 100_000,
}
# The most matcher steps any one token can cost: each rule's patterns that start on it, each
# with at most (gap + 1) branches per gap, plus the look-alike and resolution checks.
STEPS_PER_TOKEN = 400


def test_only_a_bounded_slice_of_a_turn_is_read_keeping_both_ends() -> None:
    text = "there is a fire " + "blah " * 20_000 + "the pipe burst"
    scanned = scanned_text(text)
    assert len(scanned) <= MAX_SCAN_CHARS + 3
    assert scanned.startswith("there is a fire") and scanned.endswith("the pipe burst")
    assert scanned_text("short turn") == "short turn"


def test_the_newest_words_of_a_long_turn_are_still_checked() -> None:
    hazard = detect_hazard("so about my lease " * 4000 + "and now I smell gas")
    assert hazard is not None and hazard.category == "gas"


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_turn_finishes_with_work_bounded_by_the_scanned_slice(name: str) -> None:
    scan = scan_turn(HOSTILE[name])
    assert scan.tokens <= MAX_SCAN_CHARS
    assert scan.steps <= STEPS_PER_TOKEN * max(scan.tokens, 1)


def test_work_grows_linearly_not_quadratically_with_the_turn() -> None:
    unit = "smell the gas bill outlet sparks no water pouring fire drill "
    small, large = scan_turn(unit * 5), scan_turn(unit * 20)
    assert large.tokens == 4 * small.tokens
    assert large.steps <= 4 * small.steps + STEPS_PER_TOKEN


def test_pattern_gaps_are_bounded_so_matching_cannot_backtrack_without_limit() -> None:
    for rule in HAZARDS:
        for pattern in (*rule.strong, *rule.patterns, *rule.unless, *rule.requires):
            assert all(e.gap <= 6 for e in pattern.elements), pattern.source
            assert math.prod(e.gap + 1 for e in pattern.elements) <= 64, pattern.source
    assert TokenPattern.compile("a ~2 b").elements[1].gap == 2
