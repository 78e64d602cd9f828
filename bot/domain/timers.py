"""Durable timers and jobs: rows with a due time that a scheduler loop fires once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

RING_TIMEOUT = "ring_timeout"
RONA_RESET = "rona_reset"
ACW_END = "acw_end"
QUEUE_TIMEOUT = "queue_timeout"
STALE_SWEEP = "stale_sweep"
DECLINE_HOLD = "decline_hold"  # a decliner of a queued task may be offered it again
IDLE_TIMEOUT = "idle_timeout"  # the customer went quiet for too long
CONTEXT_PURGE = "context_purge"  # stored customer context reaches its retention limit
SYNC_CARD = "sync_card"  # effect job: bring the agent's card in line with its session
OPEN_CHAT = "open_chat"  # effect job: create the chatroom of an accepted session
RELAY = "relay"  # effect job: bring new customer messages into the chatroom

# An offer whose card waits in the send queue does not ring yet; one whose card Teams has not
# taken this long after the offer ends as missed (no RONA) and the task goes on.
DELIVERY_DEADLINE = timedelta(minutes=2)

# The card an agent clicked is answered with its new state in the invoke response; the update
# that makes the change stick (on the agent's other clients) waits this long and carries every
# change made meanwhile (accept and the chatroom's link, terminate and end of after-call work
# travel as one Teams call instead of several).
CARD_SETTLE = timedelta(seconds=2)


def settled(now: datetime) -> datetime:
    """When a card answered at `now` gets its update: CARD_SETTLE later, rounded up to the
    next whole second (so at most a second more), so one scheduler pass sends a batch."""
    due = now + CARD_SETTLE
    if due.microsecond:
        due = due.replace(microsecond=0) + timedelta(seconds=1)
    return due


# A job's lease is short and renewed while the job runs: a process killed mid-job holds it for
# a few seconds at most, and the job runs again soon after a restart (or on another instance).
JOB_LEASE = timedelta(seconds=5)


@dataclass
class Timer:
    kind: str
    ref: str
    due_at: datetime
    lease_until: datetime | None = None
    attempts: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 0

    @property
    def id(self) -> str:
        return timer_id(self.kind, self.ref)

    def is_due(self, now: datetime) -> bool:
        return self.due_at <= now and (self.lease_until is None or self.lease_until <= now)


def timer_id(kind: str, ref: str) -> str:
    return f"{kind}:{ref}"
