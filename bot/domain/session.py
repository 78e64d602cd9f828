"""A My Sessions entry: one offer of a task to one agent, its result, times and wrap-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.customer import Customer
from bot.domain.service import Modality


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
    "system": "The chat was idle too long.",
}


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
