"""Adaptive Card 1.5 building blocks as plain dicts (texts passed in are already escaped)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from bot.cards.budget import Card, shrink
from bot.cards.verbs import TAGS_DATASET, Verb
from bot.cards.views import Choice

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"

Data = Mapping[str, str | int]


def adaptive_card(
    body: Iterable[Card | None], actions: Iterable[Card | None] = (), *, fit: bool = True
) -> Card:
    """A whole card; None entries are left out. With `fit`, oversized texts are cut (shrink)."""
    card: Card = {
        "$schema": SCHEMA,
        "type": "AdaptiveCard",
        "version": VERSION,
        "body": [element for element in body if element is not None],
    }
    kept = [action for action in actions if action is not None]
    if kept:
        card["actions"] = kept
    return shrink(card) if fit else card


def text(
    value: str,
    *,
    weight: str | None = None,
    size: str | None = None,
    color: str | None = None,
    subtle: bool = False,
    separator: bool = False,
    spacing: str | None = None,
) -> Card:
    block: Card = {"type": "TextBlock", "text": value, "wrap": True}
    optional = {"weight": weight, "size": size, "color": color, "spacing": spacing}
    block.update({key: item for key, item in optional.items() if item is not None})
    if subtle:
        block["isSubtle"] = True
    if separator:
        block["separator"] = True
    return block


def facts(pairs: Iterable[tuple[str, str]]) -> Card | None:
    """A FactSet, or None when there is nothing to show."""
    listed = [{"title": title, "value": value} for title, value in pairs]
    return {"type": "FactSet", "facts": listed} if listed else None


def container(items: Iterable[Card | None], *, separator: bool = False) -> Card:
    block: Card = {"type": "Container", "items": [i for i in items if i is not None]}
    if separator:
        block["separator"] = True
    return block


def execute(
    title: str,
    verb: Verb,
    data: Data | None = None,
    *,
    style: str | None = None,
    with_inputs: bool = True,
) -> Card:
    """Action.Execute with an Action.Submit fallback whose data also names the verb.

    `with_inputs=False` sends no input values and skips input validation (associatedInputs).
    """
    fields = dict(data or {})
    action: Card = {"type": "Action.Execute", "title": title, "verb": verb.value, "data": fields}
    fallback: Card = {
        "type": "Action.Submit",
        "title": title,
        "data": {**fields, "verb": verb.value},
    }
    for target in (action, fallback):
        if style is not None:
            target["style"] = style
        if not with_inputs:
            target["associatedInputs"] = "none"
    action["fallback"] = fallback
    return action


def open_url(title: str, url: str) -> Card:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def action_set(actions: Iterable[Card | None]) -> Card | None:
    kept = [action for action in actions if action is not None]
    return {"type": "ActionSet", "actions": kept} if kept else None


def choice_set(
    input_id: str,
    label: str,
    choices: Sequence[Choice],
    *,
    value: str | None = None,
    required: bool = False,
    error_message: str | None = None,
    placeholder: str | None = None,
) -> Card:
    """A compact single-choice pick list."""
    block: Card = {
        "type": "Input.ChoiceSet",
        "id": input_id,
        "label": label,
        "style": "compact",
        "choices": [{"title": c.title, "value": c.value} for c in choices],
    }
    if value is not None:
        block["value"] = value
    if placeholder is not None:
        block["placeholder"] = placeholder
    if required:
        block["isRequired"] = True
        block["errorMessage"] = error_message or f"{label} is required"
    return block


def typeahead(input_id: str, label: str, choices: Sequence[str], selected: Sequence[str]) -> Card:
    """Multi-select with Teams dynamic typeahead (`Data.Query`) over the tags dataset."""
    block: Card = {
        "type": "Input.ChoiceSet",
        "id": input_id,
        "label": label,
        "isMultiSelect": True,
        "style": "filtered",
        "choices": [{"title": choice, "value": choice} for choice in choices],
        "choices.data": {"type": "Data.Query", "dataset": TAGS_DATASET},
    }
    if selected:
        block["value"] = ",".join(selected)
    return block


def text_input(input_id: str, label: str, *, placeholder: str, max_length: int) -> Card:
    return {
        "type": "Input.Text",
        "id": input_id,
        "label": label,
        "placeholder": placeholder,
        "maxLength": max_length,
    }


def show_card(title: str, body: list[Card | None], actions: list[Card | None]) -> Card:
    """Action.ShowCard: a small card that opens under the button."""
    return {"type": "Action.ShowCard", "title": title,
            "card": adaptive_card(body, actions, fit=False)}
