"""My Sessions: the agent's latest sessions, open ones with Complete, and paging."""

from __future__ import annotations

from bot.cards.budget import Card
from bot.cards.common import MODALITY_LABELS, RESULT_LABELS, customer_label
from bot.cards.dates import readable
from bot.cards.elements import action_set, adaptive_card, container, execute, text
from bot.cards.text import LINE, NAME, shown, truncate
from bot.cards.verbs import Verb
from bot.cards.views import SessionEntry, SessionsView

MAX_ENTRIES = 25
OPEN_MARK = "ℹ"


def _entry(entry: SessionEntry) -> Card:
    mark = f"{OPEN_MARK} " if entry.is_open else ""
    complete = execute("Complete", Verb.COMPLETE, {"session_id": entry.session_id})
    return container(
        [
            text(f"{mark}**{RESULT_LABELS[entry.result]}** · {shown(entry.service, NAME)}"),
            text(
                f"{MODALITY_LABELS[entry.modality]} · {customer_label(entry.customer)} · "
                f"{readable(entry.started_at)}",
                subtle=True,
                spacing="none",
            ),
            action_set([complete]) if entry.is_open else None,
        ],
        separator=True,
    )


def sessions_card(view: SessionsView) -> Card:
    """Newest first; ℹ marks open entries, which can be completed with codes and tags."""
    entries = sorted(view.entries, key=lambda e: e.started_at, reverse=True)[:MAX_ENTRIES]
    search = f"Search: {shown(view.query, LINE)}" if view.query else None
    page = {"query": truncate(view.query, LINE)}
    return adaptive_card(
        [
            text("My Sessions", weight="bolder", size="medium"),
            text(search, subtle=True, spacing="none") if search else None,
            *(_entry(entry) for entry in entries),
            None if entries else text("No sessions found.", subtle=True),
        ],
        [
            execute("Previous", Verb.SESSIONS_PAGE, {**page, "page": max(0, view.page - 1)})
            if view.has_previous
            else None,
            execute("Next", Verb.SESSIONS_PAGE, {**page, "page": view.page + 1})
            if view.has_next
            else None,
        ],
    )
