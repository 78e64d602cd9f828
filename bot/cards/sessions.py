"""My Sessions: the agent's sessions with live state, times and outcome colour; search,
filters, Open, Complete and paging."""

from __future__ import annotations

from bot.cards.budget import Card
from bot.cards.common import MODALITY_LABELS, RESULT_LABELS, customer_label
from bot.cards.dates import readable
from bot.cards.durations import in_words
from bot.cards.elements import action_set, adaptive_card, choice_set, execute, text, text_input
from bot.cards.text import LINE, shown, truncate
from bot.cards.verbs import InputId, Verb
from bot.cards.views import (
    Choice,
    Phase,
    SessionEntry,
    SessionFilters,
    SessionResult,
    SessionsView,
    Timings,
)

MAX_ENTRIES = 15  # one page (bot.dialogs.desk.PAGE_SIZE)
OPEN_MARK = "ℹ"
SEARCH_LENGTH = 100
ENTRY_NAME = 40  # characters of a service or customer name in the list (15 entries fit)

PHASE_LABELS = {Phase.RINGING: "Ringing", Phase.CONNECTED: "Connected",
                Phase.ACW: "After-call work"}

# Adaptive Card container styles per outcome: live entries stand out as "warning".
RESULT_STYLES = {
    SessionResult.ACCEPTED: "good",
    SessionResult.DECLINED: "attention",
    SessionResult.RONA: "attention",
    SessionResult.MISSED: "attention",
    SessionResult.EXPIRED: "attention",
    SessionResult.FAILED: "attention",
    SessionResult.CANCELLED: "default",
    SessionResult.RESCINDED: "default",
}

RESULT_FILTERS = (Choice("accepted", "Accepted"), Choice("declined", "Declined"),
                  Choice("missed", "RONA or missed"), Choice("cancelled", "Cancelled"),
                  Choice("other", "Other"))
MODALITY_FILTERS = (Choice("im", "Chat"), Choice("email", "Email"),
                    Choice("external", "External task"))
NO_FILTERS: dict[str, str | int] = {"query": "", "result": "", "modality": "", "period": ""}
PERIOD_FILTERS = (Choice("today", "Today"), Choice("7d", "7 days"), Choice("30d", "30 days"))


def state_label(phase: Phase, result: SessionResult) -> str:
    """Ringing, Connected, After-call work while live; the result after."""
    return PHASE_LABELS.get(phase) or RESULT_LABELS[result]


def entry_style(phase: Phase, result: SessionResult) -> str:
    return "warning" if phase is not Phase.ENDED else RESULT_STYLES[result]


def times_line(timings: Timings) -> str:
    """"Queue 1 min · rang 10 s · talked 5 min · ACW 20 s": the times that apply."""
    named = (("queue", timings.queue_seconds), ("rang", timings.ring_seconds),
             ("talked", timings.connected_seconds), ("ACW", timings.acw_seconds))
    return " · ".join(f"{name} {in_words(value)}" for name, value in named if value is not None)


def _entry(entry: SessionEntry) -> Card:
    mark = f"{OPEN_MARK} " if entry.is_open else ""
    ids = {"session_id": entry.session_id}
    times = times_line(entry.timings)
    customer = shown(entry.customer, ENTRY_NAME) if entry.customer else customer_label(None)
    details = [MODALITY_LABELS[entry.modality], customer,
               readable(entry.started_at), *([times] if times else [])]
    return {
        "type": "Container",
        "style": entry_style(entry.phase, entry.result),
        "separator": True,
        # A click on the entry opens its detail card.
        "selectAction": execute("Open", Verb.OPEN_SESSION, ids, with_inputs=False),
        "items": [
            item for item in (
                text(f"{mark}**{state_label(entry.phase, entry.result)}** · "
                     f"{shown(entry.service, ENTRY_NAME)}"),
                text(" · ".join(details), subtle=True, spacing="none"),
                action_set([execute("Complete", Verb.COMPLETE, ids, with_inputs=False)])
                if entry.is_open else None,
            ) if item is not None
        ],
    }


def _filters(filters: SessionFilters) -> list[Card | None]:
    """Search box and pick lists; Search sends them (page 0)."""
    return [
        {**text_input(InputId.SEARCH, "Search", placeholder="Service, customer, email, phone, "
                      "subject or tag", max_length=SEARCH_LENGTH),
         **({"value": truncate(filters.query, SEARCH_LENGTH)} if filters.query else {})},
        {"type": "ColumnSet", "columns": [
            {"type": "Column", "width": "stretch", "items": [choice_set(
                input_id, label, choices, value=value or None, placeholder="Any")]}
            for input_id, label, choices, value in (
                (InputId.RESULT_FILTER, "Result", RESULT_FILTERS, filters.result),
                (InputId.MODALITY_FILTER, "Type", MODALITY_FILTERS, filters.modality),
                (InputId.PERIOD_FILTER, "Period", PERIOD_FILTERS, filters.period),
            )
        ]},
        # Typed inputs win over the filters the button carries (`desk.act_sessions_page`).
        action_set([execute("Search", Verb.SESSIONS_PAGE, {**NO_FILTERS, "page": 0})]),
    ]


def sessions_card(view: SessionsView) -> Card:
    """Newest first; ℹ marks open entries, which can be completed with codes and tags."""
    entries = sorted(view.entries, key=lambda e: e.started_at, reverse=True)[:MAX_ENTRIES]
    filters = view.filters or SessionFilters(query=view.query)
    search = f"Search: {shown(filters.query, LINE)}" if filters.query else None
    page: dict[str, str | int] = {
        "query": truncate(filters.query, SEARCH_LENGTH), "result": filters.result,
        "modality": filters.modality, "period": filters.period}
    return adaptive_card(
        [
            text("My Sessions", weight="bolder", size="medium"),
            text(search, subtle=True, spacing="none") if search else None,
            *_filters(filters),
            *(_entry(entry) for entry in entries),
            None if entries else text("No sessions found.", subtle=True),
            text(f"Page {view.page + 1}", subtle=True, size="small")
            if view.has_previous or view.has_next else None,
        ],
        [
            execute("Previous", Verb.SESSIONS_PAGE, {**page, "page": max(0, view.page - 1)},
                    with_inputs=False)
            if view.has_previous
            else None,
            execute("Next", Verb.SESSIONS_PAGE, {**page, "page": view.page + 1},
                    with_inputs=False)
            if view.has_next
            else None,
        ],
    )
