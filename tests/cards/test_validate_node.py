"""Every sample card passes the official `adaptivecards` parser (npm, schema 1.5)."""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from .samples import MODES, all_samples
from .walk import of_type

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("validate_cards.js")
# Teams supports the dynamic typeahead ("choices.data", Data.Query) in 1.5 cards, as its
# documentation shows, while the npm parser files the property under schema 1.6.
TEAMS_TYPEAHEAD = 'Property "choices.data" is supported in version 1.6'

pytestmark = pytest.mark.needs_node("adaptivecards")


@cache
def cards() -> dict[str, dict[str, Any]]:
    return {f"{mode}/{name}": card for mode in MODES for name, card in all_samples(mode).items()}


@cache
def report() -> dict[str, dict[str, Any]]:
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(cards()),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return result


def _unexpected(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if not e["message"].startswith(TEAMS_TYPEAHEAD)]


@pytest.mark.parametrize("name", list(cards()))
def test_card_parses_without_events(name: str) -> None:
    found = report()[name]
    assert "crash" not in found, found.get("crash")
    assert _unexpected(found["events"]) == []
    assert _unexpected(found["fallbackEvents"]) == []
    assert found["unknownProperties"] == []
    assert found["executeWithoutFallback"] == []
    typeaheads = sum("choices.data" in i for i in of_type(cards()[name], "Input.ChoiceSet"))
    assert len(found["events"]) == typeaheads  # exactly the one known event per typeahead


def test_the_validator_reports_mistakes() -> None:
    """The script is no rubber stamp: broken cards come back with findings."""
    broken = {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [
            {"type": "TextBlok", "text": "typo"},
            {"type": "TextBlock", "text": "x", "colour": "good"},
            {"type": "Input.ChoiceSet", "id": "a", "choices": []},
            {"type": "Input.Text", "id": "a"},
        ],
        "actions": [{"type": "Action.Execute", "title": "Go", "verb": "go"}],
    }
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps({"broken": broken}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    found = json.loads(done.stdout)["broken"]
    kinds = {event["event"] for event in found["events"]}
    assert {"UnknownElementType", "CollectionCantBeEmpty", "DuplicateId"} <= kinds
    assert "/body[1]: TextBlock.colour" in found["unknownProperties"]
    assert found["executeWithoutFallback"] == ["Go"]
