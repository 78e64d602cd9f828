"""The context a use case runs in: unit of work, clock, catalog, and bookkeeping helpers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.domain import events as ev
from bot.domain.agent import Agent, AgentState, availability, derive_state
from bot.domain.errors import NotFound, Refused, Stale
from bot.domain.events import Event
from bot.domain.message import ChatMessage, Kind, Sender
from bot.domain.service import Catalog, Modality, Service
from bot.domain.session import Phase, Session
from bot.domain.task import Task
from bot.domain.timers import RONA_RESET, SYNC_CARD, Timer, settled, timer_id
from bot.services.observe import Emitted, explain
from bot.services.ports import Clock, UnitOfWork

BOARD_TOPIC = "board:"
ALL_BOARDS = BOARD_TOPIC + "*"  # wakes every board (a change that does not name its services)


def board_topic(service_id: str) -> str:
    """The change-feed topic that wakes the supervisor boards of a service."""
    return BOARD_TOPIC + service_id


EventHook = Callable[["Ctx", Event, Task | None, Session | None], Awaitable[None]]
"""Runs in the unit of work of every emitted event (e.g. queue its web requests)."""


class Arming(Protocol):
    """Where the timers a use case arms and cancels go: the engine's job runner keeps its
    books on them (bot.services.jobs.Bookings); without one, straight to the store."""

    async def arm(self, timer: Timer) -> None: ...
    async def cancel(self, timer_id: str) -> None: ...


@dataclass
class Ctx:
    uow: UnitOfWork
    clock: Clock
    catalog: Catalog
    hooks: Sequence[EventHook] = ()
    now: datetime = field(init=False)
    _agent_states: dict[str, AgentState] = field(default_factory=dict, init=False)
    _agents: dict[str, Agent] = field(default_factory=dict, init=False)
    # Topics of the change feed that got new rows, told to live connections after commit:
    # conversations (task ids) and supervisor boards (`board_topic`).
    touched: set[str] = field(default_factory=set, init=False)
    # The events of this unit of work with their numbers: the engine's observer gets them
    # once it committed (one log line each, the metrics).
    emitted: list[Emitted] = field(default_factory=list, init=False)
    # Offers ring from the delivery of their card (a Teams side sends cards), else at once.
    cards_delivered: bool = False
    arming: Arming | None = None  # None: timers go straight to the unit of work
    # The card (message id) a card action's answer redraws: its own update can wait
    # (CARD_SETTLE); every other card follows a change at once.
    answering_card: str | None = None

    def __post_init__(self) -> None:
        self.now = self.clock.now()

    def service(self, service_id: str) -> Service:
        try:
            return self.catalog.service(service_id)
        except KeyError:
            raise NotFound(f"There is no service {service_id!r}.") from None

    async def task(self, task_id: str) -> Task:
        task = await self.uow.tasks.get(task_id)
        if task is None:
            raise NotFound(f"There is no task {task_id!r}.")
        return task

    async def own_session(self, session_id: str, agent_id: str | None, *,
                          phase: Phase | None = None, ended: str = "") -> Session:
        """A session the caller may act on (agent_id None: the system), in `phase` if given."""
        session = await self.uow.sessions.get(session_id)
        if session is None:
            raise Stale("This session is no longer known.")
        if agent_id is not None and session.agent_id != agent_id:
            raise Refused("This session belongs to another agent.", code="forbidden")
        if phase is not None and session.phase is not phase:
            raise Stale(ended or "This session has moved on.")
        return session

    async def agent(self, agent_id: str) -> Agent | None:
        """Load an agent once per use case, remembering its state to report changes."""
        if agent_id in self._agents:
            return self._agents[agent_id]
        agent = await self.uow.agents.get(agent_id)
        if agent is not None:
            self.remember(agent)
        return agent

    def remember(self, agent: Agent) -> Agent:
        if agent.id not in self._agents:
            self._agents[agent.id] = agent
            state = derive_state(agent, self.catalog, self.now)
            if agent.rona_until is not None and state not in (
                    AgentState.UNREGISTERED, AgentState.OFF_DUTY, AgentState.NOT_AVAILABLE):
                # RONA ran out but nothing recorded it yet: the log still says RONA.
                state = AgentState.RONA
            self._agent_states[agent.id] = state
        return self._agents[agent.id]

    async def save_agent(self, agent: Agent) -> None:
        if agent.rona_until is not None and agent.rona_until <= self.now:
            await self._rona_over(agent)
        before = self._agent_states.get(agent.id)
        after = derive_state(agent, self.catalog, self.now)
        if before is not after:
            agent.state_since = self.now
        await self.uow.agents.save(agent)
        # The availability index (what dispatch reads) depends on the catalog: kept here.
        await self.uow.agents.set_availability(agent, availability(agent, self.catalog))
        if before is not after:
            self.touched.update(board_topic(s) for s in agent.services)
            self._agent_states[agent.id] = after
            await self.emit(ev.AGENT_STATE_CHANGED, agent_id=agent.id,
                            state=after.value, previous=before.value if before else None)

    async def _rona_over(self, agent: Agent) -> None:
        """Clear an expired RONA flag; the card that offered Reset RONA follows."""
        agent.rona_until = None
        await self.cancel(RONA_RESET, agent.id)
        if agent.rona_session:
            await self.arm(SYNC_CARD, agent.rona_session, self.now)
            agent.rona_session = None

    async def save_session(self, session: Session) -> None:
        """Persist a session and schedule its card to follow the change."""
        await self.uow.sessions.save(session)
        due = self.now
        if session.card_id is not None and session.card_id == self.answering_card:
            due = settled(self.now)
        await self.arm(SYNC_CARD, session.id, due)

    async def add_session(self, session: Session) -> None:
        await self.uow.sessions.add(session)
        await self.arm(SYNC_CARD, session.id, self.now)

    async def arm(self, kind: str, ref: str, due: datetime, **data: Any) -> None:
        timer = Timer(kind=kind, ref=ref, due_at=due, data=dict(data))
        if self.arming is None:
            await self.uow.timers.arm(timer)
        else:
            await self.arming.arm(timer)

    async def arm_in(self, kind: str, ref: str, delay: timedelta) -> None:
        await self.arm(kind, ref, self.now + delay)

    async def cancel(self, kind: str, ref: str) -> None:
        if self.arming is None:
            await self.uow.timers.cancel(timer_id(kind, ref))
        else:
            await self.arming.cancel(timer_id(kind, ref))

    async def tell_customer(self, task: Task, kind: Kind, text: str = "",
                            **data: Any) -> None:
        """Add a row the customer's chat shows (queued, accepted, ended...); IM tasks only."""
        if task.modality is not Modality.IM:
            return
        await self.uow.messages.append(ChatMessage(
            task_id=task.id, sender=Sender.SYSTEM, text=text, at=self.now, kind=kind,
            data=dict(data)))
        self.touched.add(task.id)

    async def emit(self, name: str, *, task: Task | None = None,
                   session: Session | None = None, agent_id: str | None = None,
                   service_id: str | None = None, **data: Any) -> None:
        if task is not None:
            data.setdefault("task_state", task.state.value)
            if task.result is not None:
                data.setdefault("task_result", task.result.value)
        if session is not None:
            data.setdefault("phase", session.phase.value)
            if session.result is not None:
                data.setdefault("result", session.result.value)
        event = Event(
            name=name,
            at=self.now,
            task_id=task.id if task else (session.task_id if session else None),
            session_id=session.id if session else None,
            agent_id=agent_id or (session.agent_id if session else None),
            service_id=(task.service_id if task else None)
            or (session.service_id if session else None) or service_id,
            data=data,
        )
        await self.uow.events.append(event)
        if event.service_id:
            self.touched.add(board_topic(event.service_id))
        agent = self._agents.get(event.agent_id) if event.agent_id else None
        self.emitted.append(explain(event, task, session, agent, self.now))
        for hook in self.hooks:
            await hook(self, event, task, session)
