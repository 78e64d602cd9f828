"""One My Sessions entry opened: customer, service, call flow, times, codes, tags, context."""

from __future__ import annotations

from bot.cards.budget import Card
from bot.cards.common import MODALITY_LABELS, NOT_AVAILABLE, customer_facts, status_line
from bot.cards.dates import readable
from bot.cards.elements import adaptive_card, execute, facts, open_url, text
from bot.cards.invitation import call_flow
from bot.cards.sessions import NO_FILTERS, entry_style, state_label
from bot.cards.text import LINE, NAME, Show, safe_url, shown
from bot.cards.verbs import Verb
from bot.cards.views import SessionDetailView
from bot.cards.wrapup import timing_rows

MAX_TAGS = 50


def detail_rows(view: SessionDetailView, show: Show = shown) -> list[tuple[str, str]]:
    """The facts of an opened entry, as the card and the My Sessions tab both show them."""
    entry = view.entry
    tags = [show(tag, NAME) for tag in view.tags[:MAX_TAGS]]
    if len(view.tags) > MAX_TAGS:
        tags.append(f"and {len(view.tags) - MAX_TAGS} more")
    rows = [
        ("Customer", show(entry.customer, NAME) if entry.customer else NOT_AVAILABLE),
        ("Service", show(entry.service, NAME)),
        ("Type", MODALITY_LABELS[entry.modality]),
        ("Call flow", call_flow(view.call_flow, show)) if view.call_flow else None,
        ("Subject", show(view.email_subject, LINE)) if view.email_subject else None,
        ("Started", readable(entry.started_at)),
        *timing_rows(entry.timings),
        ("Primary code", show(view.primary_code, NAME) if view.primary_code else "None"),
        ("Secondary code", show(view.secondary_code, NAME) if view.secondary_code else "None"),
        ("Tags", ", ".join(tags) if tags else "None"),
        ("Saved", readable(view.saved_at)) if view.saved_at else None,
    ]
    return [row for row in rows if row is not None]


def session_detail_card(view: SessionDetailView) -> Card:
    """Read-only; an open entry offers Complete, a service with a context URL Open context."""
    entry = view.entry
    details = customer_facts(view.customer_fields)
    context = safe_url(view.context_url)
    ids = {"session_id": entry.session_id}
    return adaptive_card(
        [
            {"type": "Container", "style": entry_style(entry.phase, entry.result), "items": [
                text(shown(entry.service, NAME), weight="bolder", size="medium"),
                status_line(state_label(entry.phase, entry.result)),
            ]},
            facts(detail_rows(view)),
            text("Session details", weight="bolder", separator=True) if details else None,
            facts(details),
        ],
        [
            execute("Complete", Verb.COMPLETE, ids, with_inputs=False) if entry.is_open else None,
            open_url("Open context", context) if context else None,
            execute("Back to My Sessions", Verb.SESSIONS_PAGE, {**NO_FILTERS, "page": 0},
                    with_inputs=False),
        ],
    )
