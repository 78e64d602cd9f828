"""What becomes of an invitation: accepted, declined, missed, cancelled, taken, and so on."""

from __future__ import annotations

from bot.cards.budget import MAX_CARD_BYTES, Card, largest_fitting, shrink
from bot.cards.common import confirm_terminate, customer_fact_set, session_header, status_line
from bot.cards.concluded import saved_section
from bot.cards.dates import readable
from bot.cards.elements import (
    action_set,
    adaptive_card,
    choice_set,
    execute,
    facts,
    open_url,
    text,
    text_input,
)
from bot.cards.text import LINE, NAME, PARAGRAPH, plain, safe_url, shown, truncate
from bot.cards.verbs import InputId, Verb
from bot.cards.views import AcceptedView, Choice, Modality, OutcomeView
from bot.cards.wrapup import codes_and_tags

MAX_TRANSFER_TARGETS = 50
MAX_ATTACHMENTS = 20
MAX_OTHERS = 20
MAX_REPLY = 10_000  # characters of a reply (bot.services.mail.MAX_REPLY_LENGTH)


def _transfer(view: AcceptedView, *, required: bool = True) -> list[Card | None]:
    if not view.transfer_targets:
        return []
    targets = [Choice(t.value, truncate(t.title, NAME)) for t in view.transfer_targets]
    return [
        text("Transfer to another service", weight="bolder", separator=True),
        choice_set(
            InputId.TARGET_SERVICE,
            "Service",
            targets[:MAX_TRANSFER_TARGETS],
            required=required,
            error_message="Choose a service",
            placeholder="Choose a service",
        ),
        action_set([execute("Transfer", Verb.TRANSFER, {"session_id": view.header.session_id})]),
    ]


def _listed(values: tuple[str, ...], most: int, limit: int) -> str:
    names = [shown(value, limit) for value in values[:most]]
    if len(values) > most:
        names.append(f"and {len(values) - most} more")
    return ", ".join(names)


def _email(view: AcceptedView, body_chars: int) -> list[Card | None]:
    rows = []
    if view.email_sender is not None:
        rows.append(("From", shown(view.email_sender, LINE)))
    if view.email_subject is not None:
        rows.append(("Subject", shown(view.email_subject, LINE)))
    if view.email_attachments:
        rows.append(("Attachments", _listed(view.email_attachments, MAX_ATTACHMENTS, NAME)))
    return [
        facts(rows),
        text(plain(truncate(view.email_body, body_chars))) if view.email_body else None,
    ]


def _reply(view: AcceptedView) -> list[Card | None]:
    """The reply form; its input is not required, so Transfer and Mark handled never wait."""
    ids = {"session_id": view.header.session_id}
    others = view.email_others
    reply_input = text_input(InputId.REPLY_TEXT, "Your reply", placeholder="Write your reply",
                             max_length=MAX_REPLY)
    return [
        text("Reply", weight="bolder", separator=True),
        text(f"Reply all also goes to {_listed(others, MAX_OTHERS, LINE)}", subtle=True)
        if others
        else None,
        {**reply_input, "isMultiline": True},
        action_set([
            execute("Reply", Verb.REPLY, ids, style="positive"),
            execute("Reply all", Verb.REPLY_ALL, ids) if others else None,
        ]),
    ]


def _external(view: AcceptedView) -> list[Card | None]:
    details = view.external
    if details is None:
        return []
    return [
        text(shown(details.title, LINE), weight="bolder"),
        text(shown(details.description, PARAGRAPH)) if details.description else None,
        facts([("Due", readable(details.due))] if details.due else []),
    ]


def _terminate(view: AcceptedView) -> Card:
    """A chat ends only after a confirmation; an external task completes at once."""
    header = view.header
    ids = {"session_id": header.session_id}
    if header.modality is Modality.EXTERNAL:
        return execute("Complete", Verb.TERMINATE, ids, style="destructive", with_inputs=False)
    return confirm_terminate(ids, header.customer)


def _accepted(view: AcceptedView, body_chars: int, *, fit: bool) -> Card:
    header = view.header
    replies = header.modality is Modality.EMAIL and view.email_sender is not None
    chat_url = safe_url(view.chat_url)
    link = safe_url(view.external.link) if view.external else None
    context = safe_url(view.context_url)
    ids = {"session_id": header.session_id}
    if replies:
        finish = execute("Mark handled", Verb.MARK_HANDLED, ids, with_inputs=False)
    else:
        finish = _terminate(view)
    # A required pick list would block Save of the codes and tags form (it sends every input).
    required = not replies and view.wrapup is None
    return adaptive_card(
        [
            session_header(header),
            status_line("✅ Accepted", "good"),
            text(shown(view.error, LINE), color="attention") if view.error else None,
            text("The chat with the customer is open.")
            if header.modality is Modality.IM and chat_url
            else None,
            customer_fact_set(view.customer_fields),
            *_external(view),
            *_email(view, body_chars),
            *saved_section(view.saved),
            *(_reply(view) if replies else []),
            *_transfer(view, required=required),
        ],
        [
            open_url("Open chat", chat_url) if chat_url and not replies else None,
            open_url("Open link", link) if link else None,
            open_url("Open context", context) if context else None,
            codes_and_tags(view.wrapup, {"session_id": header.session_id}),
            finish,
        ],
        fit=fit,
    )


def accepted_card(view: AcceptedView) -> Card:
    """The invitation after Accept: Open chat, Terminate (Complete for external tasks); an
    email with its sender gets the reply form, Reply, Reply all and Mark handled instead.

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


CANCEL_REASONS = {
    "customer": ("Cancelled by customer", "The customer left before the task was accepted."),
    "requester": ("Withdrawn", "The task was withdrawn through the API before it was accepted."),
    "supervisor": ("Withdrawn", "A supervisor withdrew the task before it was accepted."),
    "system": ("Ended: chat idle", "The customer's chat was idle too long and ended."),
    "privacy": ("Withdrawn", "The task was withdrawn when the customer's data was erased."),
    "expired": ("Not handled in time", "The task waited too long in the queue and ended."),
}


def cancelled_card(view: OutcomeView) -> Card:
    """Says why: the customer left, the task was withdrawn, the chat went idle, time ran out."""
    status, line = CANCEL_REASONS.get(view.reason or "customer", CANCEL_REASONS["customer"])
    return _outcome(view, status, "warning", line)


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
