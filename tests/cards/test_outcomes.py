"""Accepted and the other outcome cards of an invitation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.cards import (
    accepted_card,
    cancelled_card,
    declined_card,
    expired_card,
    failed_card,
    missed_card,
    stale_card,
    taken_card,
    terminated_card,
)
from bot.cards.budget import fits
from bot.cards.views import AcceptedView, Choice, Modality, OutcomeView, SessionHeader

from .walk import all_text, by_verb, executes, inputs, open_urls, verbs

HEADER = SessionHeader("s-1", "Sales", "Visitor 3", Modality.IM)
CHAT = "https://teams.microsoft.com/l/chat/19:abc@thread.v2/0"
HOSTILE = "**bold** [x](http://evil) <script>"


def test_accepted_chat_has_open_chat_and_terminate() -> None:
    card = accepted_card(AcceptedView(HEADER, chat_url=CHAT))
    assert open_urls(card) == {"Open chat": CHAT}
    assert verbs(card) == {"terminate"}
    (confirm,) = [a for a in card["actions"] if a["type"] == "Action.ShowCard"]
    assert confirm["title"] == "Terminate"  # asks once before it ends the chat
    assert "End the conversation with Visitor 3?" in all_text(confirm["card"])
    (terminate,) = by_verb(card, "terminate")
    assert terminate["title"] == "End it" and terminate["associatedInputs"] == "none"
    assert terminate["data"] == {"session_id": "s-1"}
    assert terminate["fallback"]["data"] == {"session_id": "s-1", "verb": "terminate"}
    text = all_text(card)
    assert "Sales" in text and "Visitor 3" in text and "Accepted" in text


def test_accepted_without_chat_url_has_no_open_chat() -> None:
    card = accepted_card(AcceptedView(HEADER, chat_url=None))
    assert open_urls(card) == {}
    assert verbs(card) == {"terminate"}


def test_transfer_only_with_targets() -> None:
    assert "transfer" not in verbs(accepted_card(AcceptedView(HEADER, chat_url=CHAT)))
    targets = (Choice("support", "Support"), Choice("billing", "Billing"))
    card = accepted_card(AcceptedView(HEADER, chat_url=CHAT, transfer_targets=targets))
    (transfer,) = by_verb(card, "transfer")
    assert transfer["data"] == {"session_id": "s-1"}
    target = inputs(card)["target_service"]
    assert target["type"] == "Input.ChoiceSet" and target["style"] == "compact"
    assert [c["value"] for c in target["choices"]] == ["support", "billing"]
    assert target["isRequired"] is True and target["errorMessage"]
    (terminate,) = by_verb(card, "terminate")
    assert terminate["associatedInputs"] == "none"  # terminating never waits for a target


def test_accepted_email_shows_the_full_text() -> None:
    header = SessionHeader("s-2", "Support", "jane@example.com", Modality.EMAIL)
    body = "Dear team,\n\nplease refund order 42.\n\nJane"
    card = accepted_card(AcceptedView(header, email_subject="Refund", email_body=body))
    text = all_text(card)
    assert "Dear team,\n\nplease refund order 42.\n\nJane" in text
    assert "Refund" in text
    assert verbs(card) == {"terminate"} and open_urls(card) == {}


def test_huge_email_is_cut_to_the_budget() -> None:
    header = SessionHeader("s-2", "Support", "jane@example.com", Modality.EMAIL)
    body = "start " + "lorem ipsum " * 20_000
    card = accepted_card(AcceptedView(header, email_body=body))
    assert fits(card)
    text = all_text({**card, "actions": []})  # the texts of the card, not of its buttons' cards
    assert "start lorem" in text and text.rstrip().endswith("…")
    assert len(text) > 20_000  # the budget is used, not wasted


def test_external_task_completes_with_terminate() -> None:
    header = SessionHeader("s-3", "Back office", None, Modality.EXTERNAL)
    card = accepted_card(AcceptedView(header))
    (complete,) = by_verb(card, "terminate")
    assert complete["title"] == "Complete"
    assert complete["fallback"]["title"] == "Complete"


OUTCOMES: dict[str, tuple[Callable[[OutcomeView], dict[str, Any]], str]] = {
    "declined": (declined_card, "Declined"),
    "missed": (missed_card, "Missed"),
    "cancelled": (cancelled_card, "Cancelled by customer"),
    "taken": (taken_card, "Taken by another agent"),
    "expired": (expired_card, "Not handled in time"),
    "failed": (failed_card, "Failed"),
    "stale": (stale_card, "This invitation is no longer active"),
    "terminated": (terminated_card, "Terminated"),
}


@pytest.mark.parametrize("name", OUTCOMES)
def test_outcome_has_header_and_status(name: str) -> None:
    build, status = OUTCOMES[name]
    card = build(OutcomeView(HEADER))
    text = all_text(card)
    assert "Sales" in text and "💬 Chat · Visitor 3" in text
    assert status in text
    assert executes(card) == []


@pytest.mark.parametrize("name", OUTCOMES)
def test_outcome_offers_reset_rona_when_flagged(name: str) -> None:
    build, _ = OUTCOMES[name]
    card = build(OutcomeView(HEADER, rona_set=True))
    (reset,) = by_verb(card, "reset_rona")
    assert reset["data"] == {"session_id": "s-1"}
    assert reset["fallback"]["data"] == {"session_id": "s-1", "verb": "reset_rona"}
    assert "RONA" in all_text(card)


def test_failed_says_why_and_back_to_queue() -> None:
    text = all_text(failed_card(OutcomeView(HEADER, reason="Graph returned 403")))
    assert "The chat could not be created: Graph returned 403" in text
    assert "The task went back to the queue." in text


def test_stale_shows_the_reason() -> None:
    text = all_text(stale_card(OutcomeView(HEADER, reason="The session was terminated.")))
    assert "This invitation is no longer active" in text
    assert "The session was terminated." in text


def test_customer_none_is_not_available() -> None:
    header = SessionHeader("s-1", "Sales", None, Modality.EMAIL)
    assert "✉️ Email · Not available" in all_text(declined_card(OutcomeView(header)))


def test_outcomes_escape_customer_text() -> None:
    header = SessionHeader("s-1", HOSTILE, HOSTILE, Modality.IM)
    for build, _ in OUTCOMES.values():
        text = all_text(build(OutcomeView(header, reason=HOSTILE)))
        assert "**bold**" not in text and "<script>" not in text
    view = AcceptedView(header, email_subject=HOSTILE, email_body=HOSTILE)
    text = all_text(accepted_card(view))
    assert "**bold**" not in text and "<script>" not in text
