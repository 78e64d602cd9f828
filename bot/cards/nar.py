"""Not-available reasons: a form for the most recent pending request."""

from __future__ import annotations

from bot.cards.budget import Card
from bot.cards.dates import readable
from bot.cards.elements import adaptive_card, choice_set, execute, text
from bot.cards.text import LINE, NAME, shown, truncate
from bot.cards.verbs import InputId, Verb
from bot.cards.views import Choice, NarView

MAX_REASONS = 100


def nar_card(view: NarView) -> Card:
    """Answer requests most recent first: one form, and how many wait behind it."""
    title = text("Not-available reasons", weight="bolder", size="medium")
    if not view.requests or not view.reasons:
        note = "Nothing to fill out." if not view.requests else "No reasons are configured."
        return adaptive_card([title, text(note, subtle=True)])
    latest = max(view.requests, key=lambda r: r.created_at)
    waiting = len(view.requests) - 1
    reasons = [Choice(r.value, truncate(r.title, NAME)) for r in view.reasons[:MAX_REASONS]]
    return adaptive_card(
        [
            title,
            text("Why were you not available? Choose a reason."),
            text(f"Requested {readable(latest.created_at)}", subtle=True, spacing="none"),
            text(shown(view.error, LINE), color="attention", weight="bolder")
            if view.error
            else None,
            choice_set(
                InputId.NAR_REASON,
                "Reason",
                reasons,
                required=True,
                error_message="Choose a reason",
                placeholder="Choose a reason",
            ),
            text(
                f"{waiting} more request{'s' if waiting != 1 else ''} waiting after this one.",
                subtle=True,
            )
            if waiting
            else None,
        ],
        [execute("Fill out", Verb.FILL_NAR, {"request_id": latest.request_id}, style="positive")],
    )
