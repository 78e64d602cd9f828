"""The concluded session: result, times, codes and tags as saved."""

from __future__ import annotations

from bot.cards.budget import Card
from bot.cards.common import RESULT_LABELS, customer_label, session_header, status_line
from bot.cards.dates import readable
from bot.cards.elements import adaptive_card, facts
from bot.cards.text import NAME, shown
from bot.cards.views import ConcludedView
from bot.cards.wrapup import timing_rows

MAX_TAGS = 50


def concluded_card(view: ConcludedView) -> Card:
    """The final, read-only state of a session after its wrap-up was saved."""
    header = view.header
    tags = [shown(tag, NAME) for tag in view.tags[:MAX_TAGS]]
    if len(view.tags) > MAX_TAGS:
        tags.append(f"and {len(view.tags) - MAX_TAGS} more")
    rows = [
        ("Result", RESULT_LABELS[view.result]),
        ("Service", shown(header.service, NAME)),
        ("Customer", customer_label(header.customer)),
        ("Started", readable(view.started_at)),
        *timing_rows(view.timings),
        ("Primary code", shown(view.primary_code, NAME) if view.primary_code else "None"),
        ("Secondary code", shown(view.secondary_code, NAME) if view.secondary_code else "None"),
        ("Tags", ", ".join(tags) if tags else "None"),
        ("Saved", readable(view.saved_at)),
    ]
    return adaptive_card([session_header(header), status_line("✔️ Concluded", "good"), facts(rows)])
