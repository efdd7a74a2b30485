"""The emergency corpus: every hazard phrasing transfers; look-alikes rarely do (tune and held-out halves)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pete_vapi.emergency import HAZARDS, detect_hazard

CORPUS = [json.loads(line) for line in (Path(__file__).parent / "fixtures/emergency/corpus.jsonl").open()]
HAZARD_LINES = [(row["text"], row["hazard"]) for row in CORPUS if row["hazard"]]
LOOK_ALIKES = [row["text"] for row in CORPUS if row["hazard"] is None]


def test_corpus_is_big_enough_and_split_in_two_halves() -> None:
    assert len(HAZARD_LINES) >= 160 and len(LOOK_ALIKES) >= 110
    assert {row["split"] for row in CORPUS} == {"tune", "heldout"}
    assert {category for _, category in HAZARD_LINES} == {rule.category for rule in HAZARDS}
    assert len({row["text"] for row in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("words", "category"), HAZARD_LINES)
def test_every_hazard_phrasing_in_the_corpus_transfers_to_its_category(words: str, category: str) -> None:
    hazard = detect_hazard(words)
    assert hazard is not None, words
    assert hazard.category == category


def test_look_alikes_transfer_at_most_two_percent_of_the_time() -> None:
    false_transfers = [words for words in LOOK_ALIKES if detect_hazard(words) is not None]
    assert len(false_transfers) <= 0.02 * len(LOOK_ALIKES), false_transfers
