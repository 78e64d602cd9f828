"""Labels and the session header shared by the cards (every returned string is escaped)."""

from __future__ import annotations

import json

from bot.cards.budget import Card
from bot.cards.elements import execute, facts, show_card, text
from bot.cards.text import LINE, NAME, shown
from bot.cards.verbs import Verb
from bot.cards.views import AgentState, Modality, SessionHeader, SessionResult

NOT_AVAILABLE = "Not available"

MODALITY_LABELS = {
    Modality.IM: "💬 Chat",
    Modality.EMAIL: "✉️ Email",
    Modality.EXTERNAL: "📋 External task",
}

RESULT_LABELS = {
    SessionResult.ACCEPTED: "Accepted",
    SessionResult.DECLINED: "Declined",
    SessionResult.RONA: "RONA",
    SessionResult.MISSED: "Missed",
    SessionResult.CANCELLED: "Cancelled",  # by whom: the cancelled card says (CANCEL_REASONS)
    SessionResult.RESCINDED: "Taken by another agent",
    SessionResult.EXPIRED: "Not handled in time",
    SessionResult.FAILED: "Failed",
}

STATE_LABELS = {
    AgentState.UNREGISTERED: "Unregistered",
    AgentState.OFF_DUTY: "Off duty",
    AgentState.NOT_AVAILABLE: "Not available",
    AgentState.RONA: "RONA",
    AgentState.RINGING: "Ringing",
    AgentState.BUSY: "Busy",
    AgentState.ACW: "After-call work",
    AgentState.AVAILABLE: "Available",
}


def customer_label(customer: str | None) -> str:
    return shown(customer, NAME) if customer else NOT_AVAILABLE


def state_label(state: AgentState, reason: str | None = None) -> str:
    """The state as shown, e.g. "Available" or "Not available (Break)"."""
    label = STATE_LABELS[state]
    if state is AgentState.NOT_AVAILABLE and reason:
        return f"{label} \\({shown(reason, NAME)}\\)"
    return label


UNVERIFIED = " (unverified)"  # a name the customer typed, not signed by the website


def session_header(header: SessionHeader) -> Card:
    """Service in bold, then modality and customer (marked when the name is unverified)."""
    mark = UNVERIFIED if header.customer and header.customer_unverified else ""
    return {
        "type": "Container",
        "items": [
            text(shown(header.service, NAME), weight="bolder", size="medium"),
            text(
                f"{MODALITY_LABELS[header.modality]} · {customer_label(header.customer)}{mark}",
                subtle=True,
                spacing="none",
            ),
        ],
    }


def status_line(value: str, color: str = "default") -> Card:
    return text(value, weight="bolder", color=color, separator=True)


FIELD_BYTES = 6_000
"""JSON bytes of the customer fields and custom parameters a card shows; later ones drop."""


def customer_facts(fields: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Customer details and custom parameters as escaped (name, value) rows, within budget."""
    rows: list[tuple[str, str]] = []
    budget = FIELD_BYTES
    for name, value in fields:
        row = (shown(name, NAME), shown(value, LINE))
        budget -= len(json.dumps(row)) + 2
        if budget < 0:
            break
        rows.append(row)
    return rows


def customer_fact_set(fields: tuple[tuple[str, str], ...]) -> Card | None:
    return facts(customer_facts(fields))


def confirm_terminate(data: dict[str, str], customer: str | None) -> Card:
    """Terminate asks once ("End the conversation with …?") before it ends a live chat."""
    end = execute("End it", Verb.TERMINATE, data, style="destructive", with_inputs=False)
    question = f"End the conversation with {customer_label(customer)}?"
    return show_card("Terminate", [text(question, weight="bolder")], [end])
