"""What a web-request template is (services file) and what a pending delivery is (the outbox).

Standard library only (`bot.domain.service` imports this).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

WEBHOOK = "webhook"  # effect job `webhook:<task id>`: deliver the task's pending requests in order
MAX_ATTEMPTS = 5  # attempts of one delivery before it is recorded failed and the next one goes


class Trigger(StrEnum):
    """The moments a template can fire on (the `on` key)."""

    RINGING = "ringing"  # an offer of the task rings an agent (each offer of a broadcast)
    ACCEPTED = "accepted"  # an agent accepted the offer
    TERMINATED = "terminated"  # the agent's session with the customer ended (also on transfer)
    CONCLUDED = "concluded"  # the session's wrap-up (codes, tags) was saved: its final record


class BodyFormat(StrEnum):
    """How placeholder values are escaped in the body, from the Content-Type header."""

    JSON = "json"  # values JSON-string-escaped (put placeholders inside JSON strings)
    FORM = "form"  # application/x-www-form-urlencoded: values form-encoded
    TEXT = "text"  # anything else: values as they are


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class WebRequest:
    """One `[[service.web_request]]` table, checked at load."""

    on: Trigger
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    body_format: BodyFormat = BodyFormat.TEXT
    secret: str = field(default="", repr=False)  # HMAC-SHA256 key; never in a repr or a log
    timeout: timedelta = timedelta(seconds=10)
    # Headers whose values come from the environment ({env.NAME}), resolved at load: added as
    # each attempt is sent, like the signature, never stored with a delivery, never in a repr.
    secret_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # `[service.web_request.response] params`: parameter name -> path into the JSON answer
    # ("$.customer.tier" as ("customer", "tier"), "$.items[0].id" as ("items", 0, "id")).
    response_params: tuple[tuple[str, tuple[str | int, ...]], ...] = ()


@dataclass
class Delivery:
    """A rendered request waiting in the outbox, one row per (task, seq).

    Rendered when the event happened, in the same unit of work as the change that caused it,
    so removing customer context at the task's conclusion cannot change what is sent. The row is
    deleted once delivered or recorded failed: rendered customer data does not stay behind.
    `url`, `headers` and `body` may hold customer data and are kept out of the repr.
    """

    task_id: str
    key: str  # the Idempotency-Key header: the same on every attempt of this delivery
    service_id: str  # the service whose template this is
    template: int  # its index among the service's web_request tables
    trigger: Trigger
    method: str
    url: str = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    body: str = field(repr=False)
    timeout: float  # seconds
    signed: bool  # the template had a secret: never send this one unsigned
    created_at: datetime
    session_id: str | None = None
    not_before: datetime | None = None  # the next attempt waits until then (backoff)
    attempts: int = 0
    last_status: int | None = None  # HTTP status of the last attempt; 0 = no response
    seq: int = 0  # order within the task, given by the store
    version: int = 0
