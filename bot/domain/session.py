"""A My Sessions entry: one offer of a task to one agent, its result, times and wrap-up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.customer import Customer
from bot.domain.errors import Invalid, InvalidTransition, Refused
from bot.domain.service import Codes, Modality


class Phase(StrEnum):
    RINGING = "ringing"
    CONNECTED = "connected"
    ACW = "acw"
    ENDED = "ended"


class SessionResult(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    RONA = "rona"
    MISSED = "missed"  # a broadcast offer nobody answered: no RONA flag
    CANCELLED = "cancelled"
    RESCINDED = "rescinded"
    EXPIRED = "expired"
    FAILED = "failed"


RESULT_LABELS: dict[SessionResult, str] = {
    SessionResult.ACCEPTED: "Accepted",
    SessionResult.DECLINED: "Declined",
    SessionResult.RONA: "RONA",
    SessionResult.MISSED: "Missed",
    SessionResult.CANCELLED: "Cancelled",
    SessionResult.RESCINDED: "Taken by another agent",
    SessionResult.EXPIRED: "Expired",
    SessionResult.FAILED: "Failed",
}


# Why an offer was cancelled, by who ended the task (`lifecycle.cancel_task(by=...)`).
CANCEL_NOTES: dict[str, str] = {
    "customer": "The customer left.",
    "requester": "The task was withdrawn through the API.",
    "supervisor": "The task was withdrawn by a supervisor.",
    "system": "The chat was idle too long.",
    "privacy": "The customer's data was erased on request.",
}


# How an offer that was never accepted can end (Accept connects; a failed chat ends connected).
OFFER_ENDINGS = frozenset({
    SessionResult.DECLINED, SessionResult.RONA, SessionResult.MISSED, SessionResult.CANCELLED,
    SessionResult.RESCINDED, SessionResult.EXPIRED,
})

MAX_TAGS = 20
MAX_TAG_LENGTH = 50


def clean_tags(tags: Sequence[str]) -> list[str]:
    """Trim, drop empties, keep the first spelling of each tag (case-insensitive)."""
    seen: dict[str, str] = {}
    for raw in tags:
        tag = " ".join(raw.split())
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise Invalid(f"A tag can be at most {MAX_TAG_LENGTH} characters.", field="tags")
        seen.setdefault(tag.lower(), tag)
    if len(seen) > MAX_TAGS:
        raise Invalid(f"At most {MAX_TAGS} tags per session.", field="tags")
    return list(seen.values())


@dataclass
class Session:
    id: str
    task_id: str
    agent_id: str
    service_id: str
    modality: Modality
    offered_at: datetime
    queued_at: datetime
    ring_until: datetime
    service_name: str = ""
    customer: Customer | None = field(default_factory=Customer)
    customer_label: str | None = ""
    subject: str = ""  # an email's subject (customer content: removed with the context)
    phase: Phase = Phase.RINGING
    result: SessionResult | None = None
    answered_at: datetime | None = None
    connected_at: datetime | None = None
    terminated_at: datetime | None = None
    acw_until: datetime | None = None
    acw_extended: bool = False
    acw_ended_at: datetime | None = None
    transferred_to: str | None = None
    chat_id: str | None = None
    chat_url: str | None = None
    card_id: str | None = None  # the agent's invitation card, updated through every outcome
    # The offer rings from the moment Teams took its card (ring_until counts from then); until
    # then it waits, at most DELIVERY_DEADLINE. False where no card is sent (no Teams side).
    awaits_delivery: bool = False
    delivered_at: datetime | None = None
    relayed_seq: int = 0  # customer messages up to this sequence number reached the chat
    header_posted: bool = False  # the chatroom got its header card with the transcript
    header_seq: int = 0  # ...up to this sequence number (what a redraw of the header shows)
    # Decided when the hop ends, from the service's setting then: no retroactive effect.
    store_context: bool | None = None
    # Set with store_context: the task's conversation up to this sequence number is this hop's
    # record (what its agent saw). None on sessions closed before this was kept: all of it.
    kept_through: int | None = None
    note: str = ""  # why the session ended the way it did (failed chat, stale sweep...)
    primary_code: str | None = None
    secondary_code: str | None = None
    tags: list[str] = field(default_factory=list)
    saved_at: datetime | None = None
    version: int = 0

    @property
    def is_open(self) -> bool:
        return self.saved_at is None

    def search_text(self) -> str:
        """What My Sessions' search looks in: service, customer, email subject and tags."""
        customer = self.customer
        words = [self.service_id, self.service_name, self.customer_label or "", *self.tags]
        if customer is not None:
            words += [customer.name, customer.email, customer.phone, self.subject]
        return " ".join(w for w in words if w).lower()

    @property
    def live(self) -> bool:
        return self.phase in (Phase.RINGING, Phase.CONNECTED)

    def ring_time(self) -> timedelta | None:
        return self.answered_at - self.offered_at if self.answered_at else None

    def queue_time(self) -> timedelta:
        return self.offered_at - self.queued_at

    def connected_time(self) -> timedelta | None:
        if self.connected_at and self.terminated_at:
            return self.terminated_at - self.connected_at
        return None

    def acw_time(self) -> timedelta | None:
        if self.terminated_at and self.acw_ended_at:
            return self.acw_ended_at - self.terminated_at
        return None

    # Transitions. Each checks the phase it starts from (InvalidTransition: the use case should
    # have checked first) and leaves every field of the new phase set.

    def _expect(self, *phases: Phase) -> None:
        if self.phase not in phases:
            raise InvalidTransition(f"session {self.id} is {self.phase.value}, "
                                    f"not {'/'.join(p.value for p in phases)}")

    @property
    def awaits_card(self) -> bool:
        """Ringing, but its ring has not started: Teams has not taken its card yet."""
        return (self.awaits_delivery and self.delivered_at is None
                and self.phase is Phase.RINGING)

    def card_delivered(self, now: datetime) -> None:
        """Teams took the offer's card: the ring (its full length) starts now."""
        if not self.awaits_card:
            raise InvalidTransition(f"session {self.id} does not wait for its card")
        ring = self.ring_until - self.offered_at
        self.delivered_at = now
        self.ring_until = now + ring

    def header_in_chat(self, seq: int) -> None:
        """The chatroom got its header card with the transcript up to `seq`."""
        self.header_posted = True
        self.header_seq = seq
        self.relayed_seq = max(self.relayed_seq, seq)

    def relayed_through(self, seq: int) -> bool:
        """Customer messages up to `seq` reached the chat; False when that was known already."""
        if seq <= self.relayed_seq:
            return False
        self.relayed_seq = seq
        return True

    def accept(self, now: datetime) -> None:
        self._expect(Phase.RINGING)
        self.phase = Phase.CONNECTED
        self.result = SessionResult.ACCEPTED
        self.answered_at = now
        self.connected_at = now

    def end_offer(self, now: datetime, result: SessionResult, note: str = "") -> None:
        """A ringing offer ends unaccepted; only a decline counts as an answer."""
        self._expect(Phase.RINGING)
        if result not in OFFER_ENDINGS:
            raise InvalidTransition(f"an offer does not end as {result.value}")
        self.phase = Phase.ENDED
        self.result = result
        self.note = note or self.note
        if result is SessionResult.DECLINED:
            self.answered_at = now

    def open_chat(self, chat_id: str, chat_url: str | None) -> None:
        if self.phase is not Phase.CONNECTED or self.chat_id:
            raise InvalidTransition(f"session {self.id} cannot take a chatroom now")
        self.chat_id = chat_id
        self.chat_url = chat_url

    def fail_chat(self, now: datetime, reason: str) -> None:
        """The chatroom could not be created: the connection ends as failed, no after-call work."""
        if self.phase is not Phase.CONNECTED or self.chat_id:
            raise InvalidTransition(f"session {self.id} has no chatroom to fail")
        self.phase = Phase.ENDED
        self.result = SessionResult.FAILED
        self.note = reason
        self.terminated_at = now

    def terminate(self, now: datetime, acw: timedelta | None, *, note: str = "",
                  transferred_to: str | None = None) -> None:
        """End the connection: after-call work for `acw` when given, else the session ends."""
        self._expect(Phase.CONNECTED)
        self.terminated_at = now
        self.note = note or self.note
        if transferred_to is not None:
            self.transferred_to = transferred_to
        if acw is not None:
            self.phase = Phase.ACW
            self.acw_until = now + acw
        else:
            self.phase = Phase.ENDED
            self.acw_ended_at = now

    def extend_acw(self, now: datetime, by: timedelta) -> None:
        """Add `by` to the after-call work time left; once per session."""
        self._expect(Phase.ACW)
        if self.acw_extended:
            raise Refused("After-call work was already extended once.")
        self.acw_until = max(self.acw_until or now, now) + by
        self.acw_extended = True

    def end_acw(self, now: datetime) -> None:
        self._expect(Phase.ACW)
        self.phase = Phase.ENDED
        self.acw_ended_at = now

    def keep_record(self, store_context: bool, kept_through: int) -> None:
        """The hop is over: decide once what of its context its record keeps."""
        if self.store_context is not None:
            raise InvalidTransition(f"session {self.id} already decided its record")
        self.store_context = store_context
        self.kept_through = kept_through

    def save_wrapup(self, now: datetime, codes: Codes, primary: str | None,
                    secondary: str | None, tags: Sequence[str]) -> None:
        """Codes and tags, saved once, from Accept on, checked against the service's codes."""
        if self.saved_at is not None:
            raise Refused("The codes and tags of this session were already saved: a session is "
                          "saved once.", code="saved")
        if self.phase is Phase.RINGING:
            raise Refused("Accept the task before saving its codes and tags.")
        primary = (primary or "").strip() or None
        secondary = (secondary or "").strip() or None
        if codes.required and primary is None:
            raise Invalid("Choose a primary code before saving.", field="primary_code")
        if primary is not None and primary not in codes.primary:
            raise Invalid(f"{primary!r} is not a primary code of this service.",
                          field="primary_code")
        if secondary is not None and secondary not in codes.secondary:
            raise Invalid(f"{secondary!r} is not a secondary code of this service.",
                          field="secondary_code")
        cleaned = clean_tags(tags)  # before any field changes: a refusal leaves none changed
        self.primary_code = primary
        self.secondary_code = secondary
        self.tags = cleaned
        self.saved_at = now
