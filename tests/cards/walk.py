"""Helpers to look into card dicts in tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Card = dict[str, Any]


def nodes(node: Any) -> Iterator[Card]:
    """Every dict in the card, depth first (fallback actions included)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from nodes(item)


def of_type(card: Card, kind: str) -> list[Card]:
    return [node for node in nodes(card) if node.get("type") == kind]


def executes(card: Card) -> list[Card]:
    return of_type(card, "Action.Execute")


def by_verb(card: Card, verb: str) -> list[Card]:
    return [action for action in executes(card) if action["verb"] == verb]


def verbs(card: Card) -> set[str]:
    return {action["verb"] for action in executes(card)}


def inputs(card: Card) -> dict[str, Card]:
    return {node["id"]: node for node in nodes(card) if str(node.get("type")).startswith("Input.")}


def open_urls(card: Card) -> dict[str, str]:
    return {action["title"]: action["url"] for action in of_type(card, "Action.OpenUrl")}


def shown_texts(card: Card) -> list[str]:
    """Every string TextBlock or FactSet renders as markdown."""
    texts = [block["text"] for block in of_type(card, "TextBlock")]
    for fact_set in of_type(card, "FactSet"):
        for fact in fact_set["facts"]:
            texts += [fact["title"], fact["value"]]
    return texts


def all_text(card: Card) -> str:
    return "\n".join(shown_texts(card))
