"""My Sessions and not-available reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.cards import nar_card, sessions_card
from bot.cards.views import (
    Choice,
    Modality,
    NarRequest,
    NarView,
    SessionEntry,
    SessionResult,
    SessionsView,
)

from .walk import all_text, by_verb, inputs, of_type, verbs

T0 = datetime(2025, 11, 21, 14, 5, 9, tzinfo=UTC)
ENTRIES = (
    SessionEntry("old", SessionResult.DECLINED, "Support", None, T0 - timedelta(days=1)),
    SessionEntry("new", SessionResult.ACCEPTED, "Sales", "Visitor 3", T0, is_open=True),
    SessionEntry("mid", SessionResult.RONA, "Sales", "Jane", T0 - timedelta(hours=1), is_open=True),
)


def test_entries_newest_first_with_open_marker() -> None:
    card = sessions_card(SessionsView(ENTRIES))
    containers = of_type(card, "Container")
    firsts = [c["items"][0]["text"] for c in containers]
    assert firsts == ["ℹ **Accepted** · Sales", "ℹ **RONA** · Sales", "**Declined** · Support"]
    seconds = [c["items"][1]["text"] for c in containers]
    assert seconds[0] == "💬 Chat · Visitor 3 · Fri 21 Nov 2025, 14:05 UTC"
    assert "Not available" in seconds[2]


def test_complete_button_only_on_open_entries() -> None:
    card = sessions_card(SessionsView(ENTRIES))
    complete = by_verb(card, "complete")
    assert [a["data"] for a in complete] == [{"session_id": "new"}, {"session_id": "mid"}]
    assert complete[0]["fallback"]["data"] == {"session_id": "new", "verb": "complete"}


def test_paging_buttons_follow_the_view() -> None:
    def paging(card: dict[str, Any]) -> list[dict[str, Any]]:
        return [a for a in by_verb(card, "sessions_page") if a["title"] in ("Previous", "Next")]

    assert paging(sessions_card(SessionsView(ENTRIES))) == []
    card = sessions_card(
        SessionsView(ENTRIES, page=2, has_previous=True, has_next=True, query="refund")
    )
    previous, following = paging(card)
    carried = {"query": "refund", "result": "", "modality": "", "period": ""}
    assert previous["title"] == "Previous" and previous["data"] == {**carried, "page": 1}
    assert following["title"] == "Next" and following["data"] == {**carried, "page": 3}
    assert following["fallback"]["data"] == {**carried, "page": 3, "verb": "sessions_page"}
    assert following["associatedInputs"] == "none"  # the page keeps the filters it was drawn with
    assert isinstance(following["data"]["page"], int)
    only_next = sessions_card(SessionsView(ENTRIES, has_next=True))
    assert [a["title"] for a in paging(only_next)] == ["Next"]


def test_search_text_is_echoed_escaped() -> None:
    text = all_text(sessions_card(SessionsView((), query="**vip** <x>")))
    assert "Search: \\*\\*vip\\*\\* ‹x›" in text
    assert "No sessions found." in text


def test_entry_modalities() -> None:
    entries = tuple(
        SessionEntry(f"s{i}", SessionResult.ACCEPTED, "S", None, T0, modality=m)
        for i, m in enumerate(Modality)
    )
    text = all_text(sessions_card(SessionsView(entries)))
    assert "💬 Chat" in text and "✉️ Email" in text and "📋 External task" in text


REASONS = (Choice("break", "Break"), Choice("lunch", "Lunch"))


def test_nar_form_for_the_most_recent_request() -> None:
    requests = (
        NarRequest("r-old", T0 - timedelta(hours=2)),
        NarRequest("r-new", T0),
        NarRequest("r-mid", T0 - timedelta(hours=1)),
    )
    card = nar_card(NarView(requests, REASONS, error="Choose a reason"))
    (fill,) = by_verb(card, "fill_nar")
    assert fill["data"] == {"request_id": "r-new"}
    assert fill["fallback"]["data"] == {"request_id": "r-new", "verb": "fill_nar"}
    reason = inputs(card)["nar_reason"]
    assert reason["choices"] == [
        {"title": "Break", "value": "break"},
        {"title": "Lunch", "value": "lunch"},
    ]
    assert reason["isRequired"] is True
    text = all_text(card)
    assert "Fri 21 Nov 2025, 14:05 UTC" in text
    assert "2 more requests waiting" in text
    assert "Choose a reason" in text


def test_nar_single_request() -> None:
    card = nar_card(NarView((NarRequest("r-1", T0),), REASONS))
    assert "waiting" not in all_text(card)
    assert list(inputs(card)) == ["nar_reason"]


def test_nar_nothing_to_fill_out() -> None:
    card = nar_card(NarView((), REASONS))
    assert verbs(card) == set() and inputs(card) == {}
    assert "Nothing to fill out." in all_text(card)
