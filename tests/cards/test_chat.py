"""The chatroom header with the transcript so far."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.cards import chat_header_card
from bot.cards.budget import MAX_CARD_BYTES, card_bytes
from bot.cards.views import (
    ChatHeaderView,
    Choice,
    ConcludedView,
    Modality,
    SessionHeader,
    SessionResult,
    TranscriptLine,
    WrapUpView,
)

from .walk import all_text, by_verb, inputs, of_type, open_urls, verbs

T0 = datetime(2025, 11, 21, 14, 5, 9, tzinfo=UTC)
HOSTILE = "**bold** [x](http://evil) <script>"


def lines(count: int, text: str = "Message") -> tuple[TranscriptLine, ...]:
    return tuple(
        TranscriptLine("Visitor 3" if i % 2 else "Ada", f"{text} {i}", T0 + timedelta(seconds=i))
        for i in range(count)
    )


def test_header_shows_topic_customer_context_and_transcript() -> None:
    view = ChatHeaderView(
        "s-1",
        "Sales ¦ Jane Doe",
        "Jane Doe",
        "jane@example.com",
        "+41 44 123 45 67",
        "https://crm.example.com/c?id=1",
        lines(3),
    )
    card = chat_header_card(view)
    text = all_text(card)
    assert "Sales ¦ Jane Doe" in text
    assert "jane@example.com" in text and "+41 44 123 45 67" in text
    assert "**Ada** · 14:05:09 UTC" in text and "Message 2" in text
    assert open_urls(card) == {"Open context": "https://crm.example.com/c?id=1"}
    (terminate,) = by_verb(card, "terminate")  # behind "End the conversation with Jane Doe?"
    assert terminate["data"] == {"session_id": "s-1", "surface": "chatroom"}
    assert "End the conversation with Jane Doe?" in text


def test_minimal_header() -> None:
    card = chat_header_card(ChatHeaderView("s-1", "Sales ¦ Visitor 1"))
    assert of_type(card, "FactSet") == []
    assert "Transcript" not in all_text(card)
    assert open_urls(card) == {} and verbs(card) == {"terminate"}


def test_huge_transcript_keeps_the_latest_lines_under_28_kb() -> None:
    card = chat_header_card(ChatHeaderView("s-1", "Sales ¦ Visitor 1", transcript=lines(10_000)))
    assert card_bytes(card) < MAX_CARD_BYTES
    text = all_text(card)
    assert "Message 9999" in text
    assert "Message 0\n" not in text and "Message 0" not in text.split("not shown")[-1]
    assert "earlier messages not shown" in text
    kept = [t for t in text.split("\n") if t.startswith("Message ")]
    assert kept == [f"Message {i}" for i in range(10_000 - len(kept), 10_000)]
    assert len(kept) > 50  # the budget is used


def test_transcript_in_time_order() -> None:
    shuffled = tuple(reversed(lines(5)))
    text = all_text(chat_header_card(ChatHeaderView("s-1", "T", transcript=shuffled)))
    assert text.index("Message 0") < text.index("Message 4")


def test_one_enormous_line_is_cut_not_dropped() -> None:
    big = (TranscriptLine("Visitor", "😀" * 50_000, T0),)
    card = chat_header_card(ChatHeaderView("s-1", "T", transcript=big))
    assert card_bytes(card) < MAX_CARD_BYTES
    assert "😀😀" in all_text(card)


def test_transcript_is_escaped() -> None:
    view = ChatHeaderView("s-1", HOSTILE, HOSTILE, HOSTILE, HOSTILE, None, lines(2, HOSTILE))
    text = all_text(chat_header_card(view))
    assert "**bold**" not in text and "<script>" not in text


def wrapup_view(**changes: object) -> WrapUpView:
    header = SessionHeader("s-1", "Sales", "Jane Doe", Modality.IM)
    view = WrapUpView(header, SessionResult.ACCEPTED, T0, primary_codes=(Choice("sale", "Sale"),),
                      tag_suggestions=("vip",))
    return replace(view, **changes)  # type: ignore[arg-type]


def test_codes_and_tags_form_saves_from_the_chatroom() -> None:
    card = chat_header_card(ChatHeaderView("s-1", "Sales ¦ Jane Doe", wrapup=wrapup_view()))
    (save,) = by_verb(card, "save_wrapup")
    assert save["data"] == {"session_id": "s-1", "surface": "chatroom"}
    assert {"primary_code", "tags", "new_tags"} <= set(inputs(card))
    assert "Wrap-up saved" not in all_text(card)


def test_saved_wrapup_shows_and_the_form_goes() -> None:
    header = SessionHeader("s-1", "Sales", "Jane Doe", Modality.IM)
    saved = ConcludedView(header, SessionResult.ACCEPTED, T0, T0, primary_code="Sale",
                          tags=("vip",))
    card = chat_header_card(ChatHeaderView("s-1", "Sales ¦ Jane Doe", saved=saved,
                                           error="The wrap-up is saved already."))
    text = all_text(card)
    assert "Wrap-up saved" in text and "Sale" in text and "vip" in text
    assert "The wrap-up is saved already." in text
    assert "save_wrapup" not in verbs(card) and "terminate" in verbs(card)


def test_an_ended_conversation_offers_no_terminate() -> None:
    card = chat_header_card(ChatHeaderView("s-1", "Sales ¦ Jane Doe", live=False,
                                           wrapup=wrapup_view()))
    assert verbs(card) == {"save_wrapup"}
    assert "Conversation ended" in all_text(card)
