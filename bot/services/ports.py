"""Ports the use cases need: the clock and the unit of work with its repositories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, Self, TypeVar

from bot.domain.agent import Agent, Availability
from bot.domain.events import Event
from bot.domain.message import ChatMessage, Sender
from bot.domain.service import Modality
from bot.domain.session import Session
from bot.domain.task import Task
from bot.domain.timers import Timer
from bot.domain.webhooks.model import Delivery


class ConflictError(Exception):
    """A write lost a race: the row changed since it was read. Retry with fresh state."""


class StoreUnavailable(Exception):
    """The store cannot be reached or written right now (locked, read-only, down)."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class AgentRepository(Protocol):
    async def get(self, agent_id: str) -> Agent | None: ...
    async def add(self, agent: Agent) -> None: ...
    async def save(self, agent: Agent) -> None: ...
    async def members(self, service_id: str) -> list[Agent]: ...
    async def registered(self) -> list[Agent]: ...
    async def set_availability(self, agent: Agent, availability: Availability) -> None:
        """Keep the availability index of this (stored) agent in line with `availability`
        (`bot.domain.agent.availability` under the current catalog), in this unit of work;
        writes only if it changed. `Ctx.save_agent` calls it after every save."""
    async def available(self, service_id: str, modality: Modality, now: datetime,
                        limit: int) -> list[Agent]:
        """Agents the index says may take a task of the service and modality at `now`, longest
        idle first (the order of `bot.domain.routing.idle_key`), at most `limit`: a range read
        of the index, whatever the number of members."""


class TaskRepository(Protocol):
    async def get(self, task_id: str) -> Task | None: ...
    async def add(self, task: Task) -> None: ...
    async def save(self, task: Task) -> None: ...
    async def queued(self, service_id: str, limit: int) -> list[Task]: ...
    async def position(self, task: Task) -> int: ...
    async def live(self) -> list[Task]: ...
    async def about(self, who: CustomerQuery, limit: int) -> list[Task]:
        """Tasks whose customer matches `who` (tasks keep a customer while live), at most
        `limit`."""


@dataclass(frozen=True)
class SessionFilter:
    """Which sessions a report wants; every field narrows, None means any."""

    service_id: str | None = None
    agent_id: str | None = None
    result: str | None = None
    tag: str | None = None
    since: datetime | None = None  # offered at or after
    until: datetime | None = None  # offered before
    services: frozenset[str] | None = None  # what the caller may see (None: every service)


@dataclass(frozen=True)
class EventFilter:
    """Which events a report wants; every field narrows, None means any."""

    service_id: str | None = None
    agent_id: str | None = None
    name: str | None = None
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before
    services: frozenset[str] | None = None  # what the caller may see (None: every service)


T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True)
class Scan(Generic[T, K]):
    """What a bounded reporting read found, and the key to go on after (None: at the end).

    A read looks at no more than the rows it was allowed to: it may find fewer than asked for
    and still say where to go on."""

    found: list[T]
    resume: K | None


@dataclass(frozen=True)
class SessionSearch:
    """Which of an agent's sessions My Sessions lists; every field narrows, empty means any."""

    text: str = ""  # in `Session.search_text`
    results: frozenset[str] = frozenset()  # SessionResult values
    modality: str | None = None
    since: datetime | None = None  # offered at or after


class SessionRepository(Protocol):
    async def get(self, session_id: str) -> Session | None: ...
    async def add(self, session: Session) -> None: ...
    async def save(self, session: Session) -> None: ...
    async def for_task(self, task_id: str) -> list[Session]: ...
    async def for_agent(self, agent_id: str, limit: int, offset: int = 0,
                        query: str | SessionSearch = "") -> list[Session]:
        """The agent's sessions matching `query` (a text, or a whole search), newest first."""
    async def connected_before(self, cutoff: datetime) -> list[Session]: ...
    async def by_chat(self, chat_id: str) -> Session | None: ...
    async def by_card(self, card_id: str) -> Session | None: ...
    async def about(self, who: CustomerQuery, limit: int) -> list[Session]:
        """Sessions whose customer snapshot matches `who`, at most `limit`."""
    async def export(self, where: SessionFilter, after: tuple[datetime, str] | None,
                     limit: int, scan: int) -> Scan[Session, tuple[datetime, str]]:
        """Up to `limit` sessions matching `where`, oldest first, after the (offered_at, id)
        keyset cursor, looking at no more than about `scan` sessions."""


class EventLog(Protocol):
    async def append(self, event: Event) -> None: ...
    async def after(self, seq: int, limit: int) -> list[Event]: ...
    async def for_task(self, task_id: str) -> list[Event]: ...
    async def export(self, where: EventFilter, after: int, limit: int,
                     scan: int) -> Scan[Event, int]:
        """Up to `limit` events matching `where` after `seq`, in order, looking at no more
        than `scan` sequence numbers."""


class TimerRepository(Protocol):
    async def get(self, timer_id: str) -> Timer | None: ...
    async def arm(self, timer: Timer, *, now: datetime | None = None) -> None:
        """Create the timer or move an existing one to the new due time and bump its version.

        A lease held by a running job stays: the job sees the new version when it completes
        and releases the timer to run again, so one job never runs twice at once.

        With `now`, the armer means to run the job itself: the timer takes `timer.lease_until`
        (its first attempt) unless someone holds a lease at `now`. By the commit, `timer` says
        what happened: `lease_until` is the lease asked for if the armer got it, else None
        (the holder runs it again after), and `version` is the version written."""
    async def cancel(self, timer_id: str) -> None: ...
    async def save(self, timer: Timer) -> None: ...
    async def delete(self, timer: Timer) -> None:
        """Remove the timer if it is unchanged since read; ConflictError otherwise."""
    async def due(self, now: datetime, limit: int, kinds: Sequence[str]) -> list[Timer]: ...
    async def next_due_at(self, kinds: Sequence[str]) -> datetime | None: ...


class MessageLog(Protocol):
    async def append(self, message: ChatMessage) -> None:
        """Store the message, giving it the next sequence number of its task."""
    async def after(self, task_id: str, seq: int, limit: int) -> list[ChatMessage]: ...
    async def last_seq(self, task_id: str) -> int:
        """The highest sequence number the task's conversation has (0: none), this unit of
        work's own appends included."""
    async def sent_at(self, task_id: str, sender: Sender, limit: int) -> list[datetime]:
        """When the task's newest `limit` lines from `sender` were sent, newest first."""
    async def forget(self, task_id: str, after: int, before: int | None = None) -> int:
        """Delete the task's chat lines (kind message: the customer's and the agents' words)
        numbered above `after` (and below `before`, if given); rows that tell the customer a
        change (queued, accepted, ended) stay, so the numbering goes on where it was. Returns
        how many went."""


@dataclass(frozen=True)
class CustomerQuery:
    """Whom a privacy request is about: a record matches when any given field equals its own
    (email and name without regard to case, phone by its digits and a leading +)."""

    email: str = ""
    phone: str = ""
    name: str = ""


class Counters(Protocol):
    async def next(self, name: str) -> int: ...


class TagIndex(Protocol):
    async def record(self, service_id: str, tags: Sequence[str], at: datetime) -> None: ...
    async def suggest(self, service_id: str, text: str, limit: int) -> list[str]: ...


class Outbox(Protocol):
    """Web requests waiting to be delivered, in order per task (`bot.webhooks`)."""

    async def append(self, delivery: Delivery) -> None:
        """Store it as the task's last pending delivery: gives it the next `seq` of its task."""
    async def pending(self, task_id: str, limit: int) -> list[Delivery]:
        """The task's deliveries, oldest (lowest seq) first."""
    async def save(self, delivery: Delivery) -> None:
        """Write it back if unchanged since read (bumps `version`); ConflictError otherwise."""
    async def delete(self, delivery: Delivery) -> None:
        """Remove it if unchanged since read; ConflictError otherwise."""


class UnitOfWork(Protocol):
    @property
    def agents(self) -> AgentRepository: ...
    @property
    def tasks(self) -> TaskRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def events(self) -> EventLog: ...
    @property
    def timers(self) -> TimerRepository: ...
    @property
    def messages(self) -> MessageLog: ...
    @property
    def counters(self) -> Counters: ...
    @property
    def tags(self) -> TagIndex: ...
    @property
    def outbox(self) -> Outbox: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, _type: object, exc: object, _tb: object) -> None: ...
    async def commit(self) -> None: ...
    def announce(self, topics: Iterable[str]) -> None:
        """Tell every instance's change feed, with this commit, that these conversations (task
        ids) got new rows; a store whose feed follows its rows by itself does nothing."""
    async def guard(self, key: str) -> None:
        """Conflict with any concurrent unit of work that guards the same key (write skew)."""


class ChangeFeed(Protocol):
    """What other instances committed since the last poll, from the store itself."""

    every: float  # seconds between polls: what the feed costs against how late a chat wakes

    async def poll(self) -> set[str] | None:
        """The conversations (task ids) that got new rows since the last poll, this instance's
        own commits left out where the store can tell; None when the feed lost track (it fell
        too far behind) and every live conversation must look for itself."""


class Store(Protocol):
    """A storage backend: hands out units of work."""

    def unit_of_work(self) -> UnitOfWork: ...
    def read_only(self) -> UnitOfWork:
        """A unit of work for reads only that need not wait for writers (it may see no single
        snapshot across its reads); where the store has no such thing, a plain one."""
    async def sync(self) -> None:
        """Return once every commit made so far survives a power loss, not only a crash of
        the process (call it before acknowledging what a commit accepted)."""
    async def changes(self) -> ChangeFeed:
        """A feed of changes starting now, for one instance (one loop polls it)."""
    async def ping(self) -> None: ...
    async def close(self) -> None: ...
