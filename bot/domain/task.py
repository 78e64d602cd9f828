"""A customer's task: its lifecycle from queued to a final result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.customer import Customer
from bot.domain.service import Modality


class TaskState(StrEnum):
    QUEUED = "queued"
    RINGING = "ringing"
    CONNECTED = "connected"
    WRAPUP = "wrapup"
    DONE = "done"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def live(self) -> bool:
        return self in (TaskState.QUEUED, TaskState.RINGING, TaskState.CONNECTED)

    @property
    def finished(self) -> bool:
        return self in (TaskState.DONE, TaskState.CANCELLED, TaskState.EXPIRED)


class TaskResult(StrEnum):
    HANDLED = "handled"
    CANCELLED = "cancelled"
    NOT_HANDLED = "not_handled"


@dataclass
class Task:
    id: str
    service_id: str
    modality: Modality
    created_at: datetime
    enqueued_at: datetime
    customer: Customer = field(default_factory=Customer)
    customer_label: str = ""
    # Modality-specific content: first message, email subject/sender/preview, external title...
    content: dict[str, Any] = field(default_factory=dict)
    # How the customer reaches us: {"kind": "interact", "token_sha256": ...}; never shown.
    channel: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    state: TaskState = TaskState.QUEUED
    result: TaskResult | None = None
    call_flow: list[str] = field(default_factory=list)
    ringing: list[str] = field(default_factory=list)  # session ids of open offers
    tried: list[str] = field(default_factory=list)  # agents offered since last enqueue
    declined: dict[str, datetime] = field(default_factory=dict)  # agent -> when, since enqueue
    agent_id: str | None = None
    session_id: str | None = None
    connected_at: datetime | None = None
    ended_at: datetime | None = None
    version: int = 0

    def requeue(self, service_id: str, now: datetime) -> None:
        self.state = TaskState.QUEUED
        self.service_id = service_id
        self.enqueued_at = now
        self.ringing = []
        self.tried = []
        self.declined = {}
        self.agent_id = None
        self.session_id = None
        self.connected_at = None

    def finish(self, state: TaskState, result: TaskResult, now: datetime) -> None:
        self.state = state
        self.result = result
        self.ringing = []
        self.ended_at = now
