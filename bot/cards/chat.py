"""The chatroom's header card: topic, customer, transcript so far, codes and tags, Terminate."""

from __future__ import annotations

import json

from bot.cards.budget import MAX_CARD_BYTES, Card, card_bytes, fits, shrink
from bot.cards.common import confirm_terminate, status_line
from bot.cards.concluded import saved_section
from bot.cards.dates import clock
from bot.cards.elements import adaptive_card, container, facts, open_url, text
from bot.cards.text import LINE, NAME, PARAGRAPH, safe_url, shown
from bot.cards.verbs import CHATROOM, SURFACE
from bot.cards.views import ChatHeaderView, TranscriptLine
from bot.cards.wrapup import codes_and_tags

TOPIC = 249


def _line(line: TranscriptLine) -> Card:
    return container(
        [
            text(f"**{shown(line.sender, NAME)}** · {clock(line.at)}", size="small", subtle=True),
            text(shown(line.text, PARAGRAPH), spacing="none"),
        ]
    )


def _header(view: ChatHeaderView, total: int, latest: list[Card]) -> Card:
    customer = [
        ("Name", view.customer_name),
        ("Email", view.customer_email),
        ("Phone", view.customer_phone),
    ]
    dropped = total - len(latest)
    context_url = safe_url(view.context_url)
    ids = {"session_id": view.session_id, SURFACE: CHATROOM}
    return adaptive_card(
        [
            text(shown(view.topic, TOPIC), weight="bolder", size="medium"),
            text(shown(view.error, LINE), color="attention", weight="bolder")
            if view.error
            else None,
            None if view.live else status_line("Conversation ended"),
            facts((title, shown(value, LINE)) for title, value in customer if value),
            *saved_section(view.saved),
            text("Transcript so far", weight="bolder", separator=True) if total else None,
            text(f"… {dropped} earlier message{'s' if dropped != 1 else ''} not shown", subtle=True)
            if dropped
            else None,
            *latest,
        ],
        [
            open_url("Open context", context_url) if context_url else None,
            codes_and_tags(view.wrapup, ids),
            confirm_terminate(ids, view.customer_name) if view.live else None,
        ],
        fit=False,
    )


def chat_header_card(view: ChatHeaderView) -> Card:
    """Keeps the latest transcript lines that fit in the card budget (at least the last one)."""
    lines = sorted(view.transcript, key=lambda line: line.at)
    room = MAX_CARD_BYTES - card_bytes(_header(view, len(lines), []))
    newest_first: list[Card] = []
    for line in reversed(lines):
        element = _line(line)
        room -= len(json.dumps(element)) + 2  # ", " between list items
        if room < 0 and newest_first:
            break
        newest_first.append(element)
    card = _header(view, len(lines), newest_first[::-1])
    while not fits(card) and len(newest_first) > 1:
        newest_first.pop()
        card = _header(view, len(lines), newest_first[::-1])
    return shrink(card)
