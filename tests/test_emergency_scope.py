"""Negation cancels a hazard only inside its own clause, and normalisation keeps the boundaries that say so."""

from __future__ import annotations

import pytest

from pete_vapi.emergency import detect_hazard, normalise_speech

NEGATED = [
    "there is no gas leak",
    "I don't smell gas anymore",
    "not smoking",
    "the smoke alarm isn't going off",
    "there's no smoke or anything",
    "there is not a fire",
    "the carbon monoxide alarm is not going off",
    "the outlet isn't sparking",
    "no water is coming through the ceiling",
]

ACROSS_A_BOUNDARY = [
    ("No, I smell gas in the kitchen", "gas"),
    ("I can't breathe, there's smoke everywhere", "fire"),
    ("I don't know, there's a fire in the kitchen", "fire"),
    ("no the pipe burst", "flood"),
    ("it's not a drill there is a fire", "fire"),
    ("it's not a drill. There is a fire.", "fire"),
    ("there's no fire but I smell gas", "gas"),
    ("no fire, the pipe burst", "flood"),
    ("I don't think so and the outlet is sparking", "electrical"),
    ("nothing else, so there's smoke in the hall", "fire"),
    ("I'm not sure but I think I smell gas", "gas"),
    ("never had this before there's water pouring through the ceiling", "flood"),
    ("not not not no no there's a fire", "fire"),
]

NEGATION_THAT_IS_THE_HAZARD = [
    ("I can't breathe", "medical"),
    ("he's not breathing", "medical"),
    ("the heat isn't working and it's freezing", "no_heat"),
    ("we have no heat and it's 20 degrees", "no_heat"),
    ("the smoke alarm won't stop", "fire"),
]


@pytest.mark.parametrize("words", NEGATED)
def test_a_negator_scoping_the_hazard_cancels_it(words: str) -> None:
    assert detect_hazard(words) is None


@pytest.mark.parametrize(("words", "category"), ACROSS_A_BOUNDARY)
def test_a_negator_never_reaches_across_a_clause_or_sentence(words: str, category: str) -> None:
    hazard = detect_hazard(words)
    assert hazard is not None and hazard.category == category


@pytest.mark.parametrize(("words", "category"), NEGATION_THAT_IS_THE_HAZARD)
def test_a_negator_the_hazard_phrase_spells_out_does_not_cancel_it(words: str, category: str) -> None:
    hazard = detect_hazard(words)
    assert hazard is not None and hazard.category == category


def test_normalising_keeps_sentence_and_clause_boundaries_as_tokens() -> None:
    assert normalise_speech("No, I smell gas! Help.") == "no , i smell gas . help ."
    assert normalise_speech("it's bad; really — bad") == "its bad , really , bad"


def test_normalising_drops_fillers_stutters_and_apostrophes() -> None:
    assert normalise_speech("Um, uh, I I I smell like gas") == "i smell gas"
    assert normalise_speech("don’t") == "dont"


def test_spelled_out_acronyms_become_one_word() -> None:
    assert normalise_speech("the C.O. alarm") == "the co alarm"
    assert normalise_speech("the C. O. detector") == "the co detector"


def test_a_hazard_that_is_over_does_not_transfer_but_a_new_one_in_the_same_turn_does() -> None:
    assert detect_hazard("I smelled gas earlier but it's gone now") is None
    hazard = detect_hazard("I smelled gas earlier but it's gone now. Now there's water pouring from the ceiling")
    assert hazard is not None and hazard.category == "flood"
