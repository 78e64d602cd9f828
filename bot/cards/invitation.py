"""The invitation card offering a chat, email or external task with Accept and Decline."""

from __future__ import annotations

from bot.cards.budget import Card
from bot.cards.common import customer_fact_set, session_header
from bot.cards.dates import readable
from bot.cards.durations import in_words
from bot.cards.elements import adaptive_card, execute, facts, open_url, text
from bot.cards.text import ELLIPSIS, LINE, NAME, PARAGRAPH, Show, safe_url, shown
from bot.cards.verbs import Verb
from bot.cards.views import (
    EmailDetails,
    ExternalDetails,
    ImDetails,
    InvitationView,
    SessionHeader,
)

MAX_FLOW = 10
MAX_ATTACHMENTS = 20


def call_flow(services: tuple[str, ...], show: Show = shown) -> str:
    """The services as "Sales → Support", keeping the latest ones when the flow is long."""
    names = [show(name, NAME) for name in services[-MAX_FLOW:]]
    if len(services) > MAX_FLOW:
        names.insert(0, ELLIPSIS)
    return " → ".join(names)


def _timing(view: InvitationView) -> str:
    line = f"Rings for {in_words(view.ring_seconds)}"
    if round(view.waited_seconds) >= 1:
        line += f" · waiting for {in_words(view.waited_seconds)}"
    return line


def _details(view: InvitationView) -> list[Card | None]:
    details = view.details
    if isinstance(details, ImDetails):
        return [
            text("First message", weight="bolder"),
            text(shown(details.first_message, PARAGRAPH)),
        ]
    if isinstance(details, EmailDetails):
        names = [shown(name, NAME) for name in details.attachments[:MAX_ATTACHMENTS]]
        if len(details.attachments) > MAX_ATTACHMENTS:
            names.append(f"and {len(details.attachments) - MAX_ATTACHMENTS} more")
        rows = [("From", shown(details.sender, LINE)), ("Subject", shown(details.subject, LINE))]
        if names:
            rows.append(("Attachments", ", ".join(names)))
        return [facts(rows), text(shown(details.preview, PARAGRAPH))]
    rows = [("Due", readable(details.due))] if details.due else []
    return [
        text(shown(details.title, LINE), weight="bolder"),
        text(shown(details.description, PARAGRAPH)) if details.description else None,
        facts(rows),
    ]


def invitation_card(view: InvitationView) -> Card:
    """An offer to the agent: what, from whom, how long it rings, Accept or Decline."""
    header = SessionHeader(view.session_id, view.service, view.customer, view.modality,
                           customer_unverified=view.customer_unverified)
    context_url = safe_url(view.context_url)
    link = safe_url(view.details.link) if isinstance(view.details, ExternalDetails) else None
    ids = {"session_id": view.session_id}
    return adaptive_card(
        [
            session_header(header),
            text(_timing(view), subtle=True, spacing="small"),
            text(f"Call flow: {call_flow(view.call_flow)}", subtle=True, spacing="none")
            if view.call_flow
            else None,
            customer_fact_set(view.customer_fields),
            *_details(view),
        ],
        [
            execute("Accept", Verb.ACCEPT, ids, style="positive"),
            execute("Decline", Verb.DECLINE, ids, style="destructive"),
            open_url("Open context", context_url) if context_url else None,
            open_url("Open link", link) if link else None,
        ],
    )
