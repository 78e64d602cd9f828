"""The concluded session: result, times, codes and tags as saved (ACW may still run)."""

from __future__ import annotations

from bot.cards.budget import Card
from bot.cards.common import RESULT_LABELS, customer_label, session_header, status_line
from bot.cards.dates import clock, readable
from bot.cards.elements import adaptive_card, execute, facts, open_url, text
from bot.cards.text import LINE, NAME, safe_url, shown
from bot.cards.verbs import Verb
from bot.cards.views import ConcludedView
from bot.cards.wrapup import timing_rows

MAX_TAGS = 50


def saved_rows(view: ConcludedView) -> list[tuple[str, str]]:
    """The codes and tags as saved, and when."""
    tags = [shown(tag, NAME) for tag in view.tags[:MAX_TAGS]]
    if len(view.tags) > MAX_TAGS:
        tags.append(f"and {len(view.tags) - MAX_TAGS} more")
    return [
        ("Primary code", shown(view.primary_code, NAME) if view.primary_code else "None"),
        ("Secondary code", shown(view.secondary_code, NAME) if view.secondary_code else "None"),
        ("Tags", ", ".join(tags) if tags else "None"),
        ("Saved", readable(view.saved_at)),
    ]


def saved_section(view: ConcludedView | None) -> list[Card | None]:
    """"Wrap-up saved" and its rows, on the cards of a session saved while it runs."""
    if view is None:
        return []
    return [text("Wrap-up saved", weight="bolder", separator=True), facts(saved_rows(view))]


def concluded_card(view: ConcludedView) -> Card:
    """The saved state of a session; while ACW still runs, its end and Extend / End ACW."""
    header = view.header
    rows = [
        ("Result", RESULT_LABELS[view.result]),
        ("Service", shown(header.service, NAME)),
        ("Customer", customer_label(header.customer)),
        ("Started", readable(view.started_at)),
        *timing_rows(view.timings),
        *saved_rows(view),
    ]
    ids = {"session_id": header.session_id}
    acw = f"After-call work ends at {clock(view.acw_until)}" if view.acw_until else None
    context = safe_url(view.context_url)
    return adaptive_card(
        [
            session_header(header),
            status_line("✔️ Concluded", "good"),
            facts(rows),
            text(acw, color="warning") if acw else None,
            text(shown(view.error, LINE), color="attention", weight="bolder")
            if view.error
            else None,
        ],
        [
            execute("Extend ACW", Verb.EXTEND_ACW, ids, with_inputs=False)
            if view.acw_until and view.can_extend_acw
            else None,
            execute("End ACW", Verb.END_ACW, ids, with_inputs=False)
            if view.acw_until and view.can_end_acw
            else None,
            open_url("Open context", context) if context else None,
        ],
    )
