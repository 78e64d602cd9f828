"""A customer's task: its lifecycle from queued to a final result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.customer import Customer
from bot.domain.errors import InvalidTransition, Stale
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

    # Transitions. Each checks the state it starts from (Stale where a person's click can come
    # too late, InvalidTransition where the use case should have checked) and leaves the task
    # consistent: `ringing` lists the open offers of a ringing task and nothing else.

    def _expect(self, *states: TaskState) -> None:
        if self.state not in states:
            raise InvalidTransition(f"task {self.id} is {self.state.value}, "
                                    f"not {'/'.join(s.value for s in states)}")

    def ring(self, session_id: str, agent_id: str) -> None:
        """One more offer of the queued (or already ringing) task."""
        self._expect(TaskState.QUEUED, TaskState.RINGING)
        self.state = TaskState.RINGING
        self.ringing.append(session_id)
        if agent_id not in self.tried:
            self.tried.append(agent_id)

    def connect(self, session_id: str, agent_id: str, now: datetime) -> list[str]:
        """The offer `session_id` was accepted; returns the other offers, now to rescind.
        The task row decides: its conditional write is what makes a second accept lose."""
        if self.state is not TaskState.RINGING or session_id not in self.ringing:
            raise Stale("This task was already taken or has ended.")
        others = [sid for sid in self.ringing if sid != session_id]
        self.ringing = []
        self.state = TaskState.CONNECTED
        self.agent_id = agent_id
        self.session_id = session_id
        self.connected_at = now
        return others

    def drop_offer(self, session_id: str) -> None:
        """An offer of this task ended unaccepted (the task stays ringing until `release`)."""
        if session_id in self.ringing:
            self.ringing.remove(session_id)

    def note_decline(self, agent_id: str, now: datetime) -> None:
        """Others first: see `routing.held_back`."""
        self.declined[agent_id] = now

    def release(self) -> bool:
        """Back to the queue when nothing rings any more; True if it went back."""
        if self.state is TaskState.RINGING and not self.ringing:
            self.state = TaskState.QUEUED
            return True
        return False

    def start_wrapup(self) -> None:
        self._expect(TaskState.CONNECTED)
        self.state = TaskState.WRAPUP

    def requeue(self, service_id: str, now: datetime, *, tried: list[str] | None = None) -> None:
        """A connected task queues again (transfer, failed chat) as if newly enqueued at `now`."""
        self._expect(TaskState.CONNECTED)
        self.state = TaskState.QUEUED
        self.service_id = service_id
        self.enqueued_at = now
        self.ringing = []
        self.tried = list(tried or [])
        self.declined = {}
        self.agent_id = None
        self.session_id = None
        self.connected_at = None

    def transfer(self, service_id: str, now: datetime) -> None:
        """Queue in another service; the call flow keeps every hop."""
        self.requeue(service_id, now)
        self.call_flow.append(service_id)

    def finish(self, state: TaskState, result: TaskResult, now: datetime) -> None:
        if not state.finished:
            raise InvalidTransition(f"{state.value} is not a final state")
        if self.state.finished:
            raise InvalidTransition(f"task {self.id} has already finished ({self.state.value})")
        self.state = state
        self.result = result
        self.ringing = []
        self.ended_at = now
