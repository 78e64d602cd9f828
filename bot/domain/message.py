"""A chat message of a task's conversation, numbered per task."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Sender(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass
class ChatMessage:
    task_id: str
    sender: Sender
    text: str
    at: datetime
    agent_id: str | None = None
    seq: int = 0  # assigned by the store, 1, 2, 3... per task
