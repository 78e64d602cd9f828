"""Bodies of invoke responses Teams expects: a refreshed card, or typeahead results."""

from __future__ import annotations

from typing import Any

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def card_invoke_response(card: dict[str, Any] | None, error: str = "") -> dict[str, Any]:
    if card is None:
        return {"statusCode": 400, "type": "application/vnd.microsoft.error",
                "value": {"code": "BadRequest", "message": error}}
    return {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": card}


def search_response(tags: list[str]) -> dict[str, Any]:
    return {"type": "application/vnd.microsoft.search.searchResponse",
            "value": {"results": [{"title": t, "value": t} for t in tags[:15]]}}
