"""A chat message of a task's conversation, numbered per task."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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
