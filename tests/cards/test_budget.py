"""The 28 KB budget: measuring, cutting texts, fitting lists."""

from __future__ import annotations

from typing import Any

import pytest

from bot.cards.budget import MAX_CARD_BYTES, card_bytes, fits, largest_fitting, shrink, within
from bot.cards.elements import adaptive_card, choice_set, execute, facts, text
from bot.cards.text import ELLIPSIS, plain
from bot.cards.verbs import Verb
from bot.cards.views import Choice

from .walk import executes, shown_texts


def test_card_bytes_counts_escaped_non_ascii() -> None:
    assert card_bytes({"t": "😀"}) == len('{"t": "\\ud83d\\ude00"}')
    assert MAX_CARD_BYTES <= 28 * 1000


def test_shrink_cuts_the_longest_texts_and_keeps_buttons() -> None:
    card = adaptive_card(
        [
            text("Short title"),
            text(plain("*" * 40_000)),
            facts([("Long", "x" * 20_000)]),
            choice_set("c", "Choice", [Choice("v1", "y" * 10_000)]),
        ],
        [execute("Z" * 5_000, Verb.ACCEPT, {"session_id": "s-1"})],
    )
    assert fits(card)
    assert "Short title" in shown_texts(card)
    long_text = shown_texts(card)[1]
    assert long_text.endswith(ELLIPSIS) and not long_text[:-1].endswith("\\\\\\")
    assert card["body"][3]["choices"][0]["value"] == "v1"
    assert executes(card)[0]["data"] == {"session_id": "s-1"}


def test_shrink_leaves_fitting_cards_alone() -> None:
    card: dict[str, Any] = adaptive_card([text("hello")])
    assert shrink(card) == card


def test_largest_fitting_finds_the_boundary() -> None:
    def build(n: int) -> dict[str, Any]:
        return {"x": "a" * n}

    best = largest_fitting(build, 100_000)
    assert fits(build(best)) and not fits(build(best + 1))
    assert largest_fitting(build, 10) == 10


def test_within_keeps_leading_values_in_budget() -> None:
    assert within(["ab", "cd", "ef"], 12) == ["ab", "cd"]
    assert within(["ab"], 0) == []


@pytest.mark.parametrize("unit", ["a", "é", "漢", "😀", '"', "\n"])
def test_fits_agrees_with_the_escaped_size_near_both_bounds(unit: str) -> None:
    # fits() answers from orjson's compact length while it is under a third of the budget:
    # cards whose escaped size crosses the budget, and others just past that third.
    for chars in range(1_000, 30_000, 373):
        card = {"type": "AdaptiveCard", "body": [
            {"type": "TextBlock", "text": unit * (chars // 10), "wrap": True}] * 10}
        assert fits(card) == (card_bytes(card) < MAX_CARD_BYTES), (unit, chars)


def test_fits_measures_what_orjson_refuses() -> None:
    assert fits({"n": 2**70})
    assert not fits({"n": 2**70, "text": "x" * MAX_CARD_BYTES})
