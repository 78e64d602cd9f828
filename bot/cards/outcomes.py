"""What becomes of an invitation: accepted, declined, missed, cancelled, taken, and so on."""

from __future__ import annotations

from bot.cards.budget import MAX_CARD_BYTES, Card, largest_fitting, shrink
from bot.cards.common import session_header, status_line
from bot.cards.elements import action_set, adaptive_card, choice_set, execute, facts, open_url, text
from bot.cards.text import LINE, NAME, plain, safe_url, shown, truncate
from bot.cards.verbs import InputId, Verb
from bot.cards.views import AcceptedView, Choice, Modality, OutcomeView

MAX_TRANSFER_TARGETS = 50


def _transfer(view: AcceptedView) -> list[Card | None]:
    if not view.transfer_targets:
        return []
    targets = [Choice(t.value, truncate(t.title, NAME)) for t in view.transfer_targets]
    return [
        text("Transfer to another service", weight="bolder", separator=True),
        choice_set(
            InputId.TARGET_SERVICE,
            "Service",
            targets[:MAX_TRANSFER_TARGETS],
            required=True,
            error_message="Choose a service",
            placeholder="Choose a service",
        ),
        action_set([execute("Transfer", Verb.TRANSFER, {"session_id": view.header.session_id})]),
    ]


def _accepted(view: AcceptedView, body_chars: int, *, fit: bool) -> Card:
    header = view.header
    external = header.modality is Modality.EXTERNAL
    chat_url = safe_url(view.chat_url)
    email = []
    if view.email_subject is not None:
        email.append(facts([("Subject", shown(view.email_subject, LINE))]))
    if view.email_body:
        email.append(text(plain(truncate(view.email_body, body_chars))))
    return adaptive_card(
        [
            session_header(header),
            status_line("✅ Accepted", "good"),
            text("The chat with the customer is open.")
            if header.modality is Modality.IM and chat_url
            else None,
            *email,
            *_transfer(view),
        ],
        [
            open_url("Open chat", chat_url) if chat_url else None,
            execute(
                "Complete" if external else "Terminate",
                Verb.TERMINATE,
                {"session_id": header.session_id},
                style="destructive",
                with_inputs=False,
            ),
        ],
        fit=fit,
    )


def accepted_card(view: AcceptedView) -> Card:
    """The invitation after Accept: Open chat, Terminate (Complete for external tasks).

    An email's full text is kept as long as the card budget allows.
    """
    body = view.email_body or ""
    most = min(len(body), MAX_CARD_BYTES)  # no card holds more characters than bytes
    chars = largest_fitting(lambda n: _accepted(view, n, fit=False), most)
    return shrink(_accepted(view, chars, fit=False))


def _outcome(view: OutcomeView, status: str, color: str, *lines: str) -> Card:
    rona = (
        "You are flagged RONA and receive no new tasks until RONA is reset."
        if view.rona_set
        else None
    )
    reset = execute(
        "Reset RONA",
        Verb.RESET_RONA,
        {"session_id": view.header.session_id},
        style="positive",
        with_inputs=False,
    )
    return adaptive_card(
        [
            session_header(view.header),
            status_line(status, color),
            *(text(line) for line in lines if line),
            text(rona, color="attention") if rona else None,
        ],
        [reset if view.rona_set else None],
    )


def _reason(view: OutcomeView) -> str:
    return shown(view.reason, LINE) if view.reason else ""


def declined_card(view: OutcomeView) -> Card:
    return _outcome(view, "Declined", "default", "The task went back to the queue.")


def missed_card(view: OutcomeView) -> Card:
    """Not accepted in time (RONA); Reset RONA when the agent is flagged."""
    return _outcome(view, "⏰ Missed", "attention", "The invitation was not accepted in time.")


def cancelled_card(view: OutcomeView) -> Card:
    return _outcome(
        view, "Cancelled by customer", "warning", "The customer left before the task was accepted."
    )


def taken_card(view: OutcomeView) -> Card:
    return _outcome(view, "Taken by another agent", "default", "Another agent accepted this task.")


def expired_card(view: OutcomeView) -> Card:
    return _outcome(
        view, "Not handled in time", "warning", "The task waited too long in the queue and ended."
    )


def failed_card(view: OutcomeView) -> Card:
    """The chat could not be created; the reason, and the task is back in the queue."""
    reason = _reason(view)
    return _outcome(
        view,
        "⚠️ Failed",
        "attention",
        "The chat could not be created" + (f": {reason}" if reason else "."),
        "The task went back to the queue.",
    )


def stale_card(view: OutcomeView) -> Card:
    return _outcome(view, "This invitation is no longer active", "default", _reason(view))


def terminated_card(view: OutcomeView) -> Card:
    return _outcome(view, "Terminated", "default", "The session has ended.")
