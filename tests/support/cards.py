"""Finding things in Adaptive Cards and activities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _first(node: Any, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The first dict anywhere in a card (depth first) that `match` accepts."""
    if isinstance(node, dict):
        if match(node):
            return node
        children: Any = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _first(child, match)
        if found is not None:
            return found
    return None


def find_action(node: Any, verb: str) -> dict[str, Any] | None:
    """The first Action.Execute with this verb anywhere in a card."""
    return _first(node, lambda n: n.get("type") == "Action.Execute" and n.get("verb") == verb)


def find_input(node: Any, input_id: str) -> dict[str, Any] | None:
    """The first input (Input.*) with this id anywhere in a card."""
    return _first(node, lambda n: n.get("id") == input_id
                  and str(n.get("type", "")).startswith("Input."))


def card_of(activity: dict[str, Any] | None) -> dict[str, Any] | None:
    """The Adaptive Card an activity carries (its first attachment with a content object)."""
    for attachment in (activity or {}).get("attachments") or []:
        content = attachment.get("content")
        if isinstance(content, dict):
            return content
    return None
