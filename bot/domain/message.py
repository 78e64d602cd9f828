"""A chat message of a task's conversation, numbered per task."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

RELAY_BATCH = 200
"""Lines one relay step into the chatroom reads (the header card keeps what fits of them);
what the chatroom is still owed is looked for as far."""


class Sender(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    SYSTEM = "system"


class Kind(StrEnum):
    """What a row of the conversation is: a message, or a change the customer is shown."""

    MESSAGE = "message"
    QUEUED = "queued"
    ACCEPTED = "accepted"
    ENDED = "ended"
    EXPIRED = "expired"


@dataclass
class ChatMessage:
    task_id: str
    sender: Sender
    text: str
    at: datetime
    agent_id: str | None = None
    kind: Kind = Kind.MESSAGE
    data: dict[str, Any] = field(default_factory=dict)  # e.g. {"by": "agent"}, {"agent": name}
    seq: int = 0  # assigned by the store, 1, 2, 3... per task


@dataclass(frozen=True)
class LinePace:
    """A flood guard on one chat: at most `lines` customer lines in any `window`."""

    lines: int
    window: timedelta

    def wait(self, newest: Sequence[datetime], now: datetime) -> timedelta | None:
        """How long until one more line may go, given when the chat's newest `lines` customer
        lines were sent (newest first); None: it may go now."""
        if len(newest) < self.lines:
            return None
        left = newest[self.lines - 1] + self.window - now
        return left if left > timedelta(0) else None
