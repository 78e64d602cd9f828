"""The invitation card for chats, emails and external tasks."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.cards import invitation_card
from bot.cards.views import EmailDetails, ExternalDetails, ImDetails, InvitationView, Modality

from .walk import all_text, by_verb, open_urls, verbs

HOSTILE = "**bold** [x](http://evil) <script>"


def im(**changes: object) -> InvitationView:
    fields: dict[str, object] = {
        "session_id": "s-1",
        "service": "Sales",
        "customer": "Visitor 3",
        "details": ImDetails("Where is my order?"),
        "ring_seconds": 30,
        "waited_seconds": 65,
        "call_flow": ("Sales", "Support"),
        "context_url": "https://crm.example.com/c?id=1",
    }
    fields.update(changes)
    return InvitationView(**fields)  # type: ignore[arg-type]


def test_accept_and_decline_carry_the_session() -> None:
    card = invitation_card(im())
    assert verbs(card) == {"accept", "decline"}
    for verb in ("accept", "decline"):
        (action,) = by_verb(card, verb)
        assert action["data"] == {"session_id": "s-1"}
        assert action["fallback"]["type"] == "Action.Submit"
        assert action["fallback"]["data"] == {"session_id": "s-1", "verb": verb}
    assert [a["title"] for a in card["actions"]][:2] == ["Accept", "Decline"]


def test_im_invitation_shows_the_common_fields() -> None:
    card = invitation_card(im())
    text = all_text(card)
    assert "Sales" in text
    assert "💬 Chat · Visitor 3" in text
    assert "Rings for 30 seconds · waiting for 1 minute 5 seconds" in text
    assert "Call flow: Sales → Support" in text
    assert "Where is my order?" in text
    assert open_urls(card) == {"Open context": "https://crm.example.com/c?id=1"}


def test_minimal_invitation() -> None:
    view = im(customer=None, call_flow=(), context_url=None, waited_seconds=0)
    card = invitation_card(view)
    text = all_text(card)
    assert "Not available" in text
    assert "Call flow" not in text and "waiting" not in text
    assert open_urls(card) == {}


def test_unsafe_context_url_is_left_out() -> None:
    assert open_urls(invitation_card(im(context_url="javascript:alert(1)"))) == {}


def test_email_invitation() -> None:
    details = EmailDetails("jane@example.com", "Refund", "Please refund.", ("a.pdf", "b.png"))
    view = im(details=details)
    assert view.modality is Modality.EMAIL
    text = all_text(invitation_card(view))
    assert "✉️ Email" in text
    assert "jane@example.com" in text and "Refund" in text and "Please refund." in text
    assert "a.pdf, b.png" in text


def test_email_without_attachments() -> None:
    text = all_text(invitation_card(im(details=EmailDetails("a@b.c", "Hi", "Text"))))
    assert "Attachments" not in text


def test_external_invitation() -> None:
    due = datetime(2025, 11, 21, 14, 5, tzinfo=UTC)
    details = ExternalDetails("Call back", "Wants a call", due, "https://crm.example.com/t/1")
    card = invitation_card(im(details=details, context_url=None))
    text = all_text(card)
    assert "📋 External task" in text
    assert "Call back" in text and "Wants a call" in text
    assert "Fri 21 Nov 2025, 14:05 UTC" in text
    assert open_urls(card) == {"Open link": "https://crm.example.com/t/1"}
    assert verbs(card) == {"accept", "decline"}


def test_long_call_flow_keeps_the_latest_services() -> None:
    flow = tuple(f"S{i}" for i in range(15))
    text = all_text(invitation_card(im(call_flow=flow)))
    assert "Call flow: … → S5 → S6" in text and text.count("→") == 10


def test_invitation_escapes_customer_text() -> None:
    details = EmailDetails(HOSTILE, HOSTILE, HOSTILE, (HOSTILE,))
    card = invitation_card(
        im(service=HOSTILE, customer=HOSTILE, details=details, call_flow=(HOSTILE,))
    )
    text = all_text(card)
    assert "**bold**" not in text and "[x](" not in text and "<" not in text
    assert text.count(r"\*\*bold\*\* \[x\]\(http://evil\) ‹script›") >= 6


def test_long_first_message_is_truncated() -> None:
    text = all_text(invitation_card(im(details=ImDetails("word " * 2_000))))
    assert "word word" in text and "…" in text
    assert len(text) < 3_000


def test_a_name_the_customer_only_typed_is_marked_unverified() -> None:
    assert "Jane Roe (unverified)" in all_text(invitation_card(
        im(customer="Jane Roe", customer_unverified=True)))
    signed = all_text(invitation_card(im(customer="Jane Roe")))
    assert "Jane Roe" in signed and "unverified" not in signed
    # Nothing to mark when there is no name.
    assert "unverified" not in all_text(invitation_card(
        im(customer=None, customer_unverified=True)))
