"""Card size: measure the serialized card and keep it under the 28 KB budget."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from bot.cards.text import cut_escaped

Card = dict[str, Any]

MAX_CARD_BYTES = 28_000
"""Below both 28 kB and 28 KiB, measured as ASCII-escaped JSON (the largest encoding)."""

_MIN_TEXT = 8
_MARGIN = 64
# json.dumps writes at most 3 bytes for each byte of compact UTF-8 JSON: a separator gains a
# space (2x), a non-ASCII character of 2 or 4 UTF-8 bytes becomes 6 or 12 (3x), ASCII stays.
_WORST_GROWTH = 3


def card_bytes(card: Card) -> int:
    """Bytes of `card` as json.dumps sends it (non-ASCII escaped, the worst case)."""
    return len(json.dumps(card).encode("ascii"))


def fits(card: Card) -> bool:
    """`card_bytes(card) < MAX_CARD_BYTES`; most cards are a fraction of the budget, and
    orjson's compact length (a tenth of json.dumps' time) bounds theirs without writing it."""
    try:
        compact = len(orjson.dumps(card))
    except TypeError:  # what orjson refuses (a long integer, a key that is not a string)
        return card_bytes(card) < MAX_CARD_BYTES
    return compact * _WORST_GROWTH < MAX_CARD_BYTES or card_bytes(card) < MAX_CARD_BYTES


def within(values: Iterable[str], budget: int) -> list[str]:
    """The leading values whose JSON takes at most `budget` bytes (for values never cut)."""
    kept: list[str] = []
    for value in values:
        budget -= len(json.dumps(value)) + 2
        if budget < 0:
            break
        kept.append(value)
    return kept


def largest_fitting(build: Callable[[int], Card], most: int) -> int:
    """The largest n in [0, most] for which build(n) fits; 0 when none does.

    `build` must grow with n (more transcript lines, more characters).
    """
    if fits(build(most)):
        return most
    low, high = 0, most
    while high - low > 1:
        middle = (low + high) // 2
        if fits(build(middle)):
            low = middle
        else:
            high = middle
    return low


def _texts(node: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """(owner, key) of every string only shown: texts, facts, choice and button titles."""
    if isinstance(node, list):
        for item in node:
            yield from _texts(item)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "TextBlock":
        yield node, "text"
    elif kind == "FactSet":
        yield from ((fact, key) for fact in node["facts"] for key in ("title", "value"))
    elif kind == "Input.ChoiceSet":
        yield from ((choice, "title") for choice in node["choices"])
    elif isinstance(kind, str) and kind.startswith("Action.") and "title" in node:
        yield node, "title"
    for value in node.values():
        if isinstance(value, list | dict):
            yield from _texts(value)


def shrink(card: Card) -> Card:
    """Cut the longest texts of a freshly built card until it fits; returns the same card.

    A last resort after the builders' own limits: it keeps the structure and every button.
    """
    while not fits(card):
        candidates = [(len(owner[key]), owner, key) for owner, key in _texts(card)]
        if not candidates:
            break
        length, owner, key = max(candidates, key=lambda c: c[0])
        if length <= _MIN_TEXT:
            break
        excess = card_bytes(card) - MAX_CARD_BYTES + _MARGIN
        share = excess / len(json.dumps(owner[key]))
        keep = int(length * (1 - share)) if share < 0.5 else length // 2
        owner[key] = cut_escaped(owner[key], max(_MIN_TEXT, keep))
    return card
