"""What the engine tells an observer (logs, traces, metrics): the port and its silent default."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from bot.domain.agent import Agent
from bot.domain.events import Event
from bot.domain.session import Session
from bot.domain.task import Task


@dataclass(frozen=True, slots=True)
class Emitted:
    """An event as it committed, with the numbers that explain it (never customer values):
    how long the task waited, how long the offer rang, how long its card took to arrive,
    which offer of the task this was. Kept beside the event, not stored."""

    event: Event
    modality: str | None = None
    agent_object_id: str | None = None
    waited_ms: int | None = None
    rang_ms: int | None = None
    delivery_ms: int | None = None
    attempt: int | None = None


def _ms(later: datetime | None, earlier: datetime | None) -> int | None:
    if later is None or earlier is None:
        return None
    return max(0, round((later - earlier).total_seconds() * 1000))


def explain(event: Event, task: Task | None, session: Session | None,
            agent: Agent | None, now: datetime) -> Emitted:
    """The event with its numbers, read from the task and session as the event left them."""
    modality = (task.modality.value if task is not None
                else session.modality.value if session is not None else None)
    waited = rang = delivery = None
    if session is not None:
        answered = session.answered_at or now
        waited = _ms(answered, session.queued_at)
        rang = _ms(answered, session.delivered_at or session.offered_at)
        delivery = _ms(session.delivered_at, session.offered_at)
    elif task is not None:
        waited = _ms(task.ended_at or task.connected_at or now, task.enqueued_at)
    attempt = len(task.tried) if task is not None and task.tried else None
    return Emitted(event, modality, agent.object_id if agent is not None else None,
                   waited, rang, delivery, attempt)


class Watch(Protocol):
    """One use case, job or outbound call as it runs: told each lost race, and by the
    exception it ends with (if any) whether it failed."""

    def __enter__(self) -> Watch: ...
    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...
    def conflict(self) -> None: ...


class Observer(Protocol):
    """Told by the engine what it runs and what committed; it must not fail or block."""

    def unit_of_work(self, use_case: Callable[..., Any]) -> Watch: ...
    def job(self, kind: str) -> Watch: ...
    def outbound(self, target: str, operation: str) -> Watch:
        """A call to the outside world the HTTP clients do not see (an SMTP send)."""
    def committed(self, emitted: Sequence[Emitted]) -> None: ...


class _Silent:
    """Watches nothing: one shared object, nothing allocated per use case."""

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def conflict(self) -> None:
        return None


_SILENT = _Silent()


class SilentObserver:
    """The default: observes nothing (tools, unit tests)."""

    def unit_of_work(self, use_case: Callable[..., Any]) -> Watch:
        return _SILENT

    def job(self, kind: str) -> Watch:
        return _SILENT

    def outbound(self, target: str, operation: str) -> Watch:
        return _SILENT

    def committed(self, emitted: Sequence[Emitted]) -> None:
        return None
