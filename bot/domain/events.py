"""Events: the append-only record of every transition, the reporting model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TASK_CREATED = "task.created"
OFFER_CREATED = "offer.created"
OFFER_ACCEPTED = "offer.accepted"
OFFER_DECLINED = "offer.declined"
OFFER_TIMED_OUT = "offer.timed_out"
OFFER_RESCINDED = "offer.rescinded"
OFFER_CANCELLED = "offer.cancelled"
OFFER_EXPIRED = "offer.expired"
OFFER_FAILED = "offer.failed"
TASK_CANCELLED = "task.cancelled"
TASK_EXPIRED = "task.expired"
TASK_QUEUED = "task.queued"
TASK_TRANSFERRED = "task.transferred"
TASK_DONE = "task.done"
SESSION_CONNECTED = "session.connected"
SESSION_TERMINATED = "session.terminated"
ACW_STARTED = "acw.started"
ACW_EXTENDED = "acw.extended"
ACW_ENDED = "acw.ended"
SESSION_SAVED = "session.saved"
AGENT_STATE_CHANGED = "agent.state_changed"
AGENT_REGISTERED = "agent.registered"
AGENT_UNREGISTERED = "agent.unregistered"
AGENT_SERVICE_SWITCHED = "agent.service_switched"  # responsibility for one service off or on
NAR_FILLED = "nar.filled"
WEBHOOK_DELIVERED = "webhook.delivered"  # a web-request template's request got a 2xx
WEBHOOK_FAILED = "webhook.failed"  # ...or was given up on (attempts used up, or refused)
TASK_CONTEXT_CHANGED = "task.context_changed"  # customer fields or parameters set while live
PRIVACY_ERASED = "privacy.erased"  # a customer's data was erased on request (counts only)
SUPERVISOR_ACTED = "supervisor.acted"  # withdraw, offer, reset_rona, off_duty from the board


@dataclass
class Event:
    """One transition. `data` holds ids and states only, never customer details."""

    name: str
    at: datetime
    task_id: str | None = None
    session_id: str | None = None
    agent_id: str | None = None
    service_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0  # assigned by the store
