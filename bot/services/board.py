"""The supervisor board: each supervised service's queue, agents, live sessions and today's figures.

Live state comes from the task and agent rows; today's figures from the sessions the reporting
export (`/api/v1/sessions`) reads, so the board and the export count the same things. A board
shows a customer only by the label the agents' cards show.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain.agent import Agent, AgentState, derive_state
from bot.domain.errors import Refused
from bot.domain.service import Catalog, Service
from bot.domain.session import Phase, Session
from bot.domain.task import Task, TaskState
from bot.services.context import Ctx
from bot.services.live_status import ServiceStatus, service_status
from bot.services.ports import SessionFilter

HOUR = timedelta(hours=1)
DAY = 24 * HOUR
# Upper bounds (seconds) of the wait-time buckets; the last bucket is everything longer.
WAIT_BOUNDS: tuple[int, ...] = (10, 20, 30, 60, 120, 300)
# How a hop of a task (its time queued in one service) ended, as the figures count it.
ANSWERED, CANCELLED, EXPIRED, WAITING = "answered", "cancelled", "expired", "waiting"
RESULTS = (ANSWERED, CANCELLED, EXPIRED, WAITING)
EXPORT_PAGE = 500  # sessions per read of the export
EXPORT_SCAN = 2_000  # ...looking at no more than these
MAX_DAY_SESSIONS = 20_000  # a day's figures read at most this many sessions (then `partial`)


@dataclass(frozen=True)
class Supervisor:
    """Who asks, as the services file names supervisors (resolved by the surface)."""

    upn: str | None
    object_id: str | None = None


NOT_A_SUPERVISOR = "You do not supervise any service."


def supervised(catalog: Catalog, who: Supervisor) -> tuple[str, ...]:
    return catalog.supervised(who.upn, who.object_id)


def require_supervisor(ctx: Ctx, who: Supervisor, service_id: str) -> Service:
    """The service, if `who` supervises it; a 403 refusal (404 for no such service) else."""
    service = ctx.service(service_id)
    if not service.supervised_by(who.upn, who.object_id):
        raise Refused(f"You do not supervise {service.name}.", code="forbidden")
    return service


@dataclass(frozen=True)
class QueueEntry:
    task_id: str
    customer: str  # the label the invitation card shows, nothing more
    modality: str
    state: str  # queued | ringing
    priority: int
    queued_at: datetime
    waiting: timedelta
    call_flow: tuple[str, ...]  # service ids of its hops, first to current
    ringing: tuple[str, ...]  # agent ids its open offers ring


@dataclass(frozen=True)
class AgentEntry:
    agent_id: str
    name: str
    state: AgentState
    since: datetime | None  # when the state began (None: not recorded)
    in_state: timedelta | None
    paused: bool  # switched their responsibility for this service off
    rona_until: datetime | None
    sessions: int  # offers, connections and after-call work on hand


@dataclass(frozen=True)
class LiveSession:
    session_id: str
    task_id: str
    agent_id: str
    agent: str
    customer: str
    modality: str
    phase: str  # ringing | connected | acw
    since: datetime


@dataclass(frozen=True)
class HourFigure:
    start: datetime
    results: dict[str, int]  # RESULTS -> hops that began (were queued) in this hour


@dataclass(frozen=True)
class WaitBucket:
    up_to: int | None  # seconds; None: longer than the last bound
    answered: int
    unanswered: int  # cancelled or expired after waiting this long


@dataclass(frozen=True)
class DayFigures:
    since: datetime
    hours: list[HourFigure]
    waits: list[WaitBucket]
    results: dict[str, int]
    answered_within: int  # answered within the threshold
    threshold: timedelta
    service_level: float | None  # answered_within / (answered + cancelled + expired); None: none
    partial: bool = False  # the day had more sessions than one board reads


@dataclass(frozen=True)
class ServiceBoard:
    service_id: str
    name: str
    picture: ServiceStatus
    """In numbers, as /api/v1/status has it (bot/services/live_status.py)."""
    queue: list[QueueEntry]
    agents: list[AgentEntry]
    sessions: list[LiveSession]
    figures: DayFigures | None  # None: not asked for (see `boards`)


@dataclass
class _Live:
    """What one service's rows say right now."""

    tasks: list[Task] = field(default_factory=list)
    members: list[Agent] = field(default_factory=list)
    agents: dict[str, Agent] = field(default_factory=dict)  # members, and others at work here
    sessions: list[Session] = field(default_factory=list)


async def boards(ctx: Ctx, who: Supervisor, day_start: datetime,
                 service_id: str | None = None, *,
                 figures_for: Container[str] | None = None) -> list[ServiceBoard]:
    """The boards of every service `who` supervises (or of `service_id` only), with figures
    since `day_start` (only for the services in `figures_for`, when given: the figures read
    the day's sessions, the rest only what is live); a 403 refusal for someone who supervises
    none."""
    if service_id is not None:
        service_ids: Sequence[str] = [require_supervisor(ctx, who, service_id).id]
    else:
        service_ids = supervised(ctx.catalog, who)
    if not service_ids:
        raise Refused(NOT_A_SUPERVISOR, code="forbidden")
    lives = await _read_live(ctx, service_ids)
    found = []
    for sid in service_ids:
        service, live = ctx.catalog.service(sid), lives[sid]
        found.append(ServiceBoard(
            service_id=sid, name=service.name,
            picture=service_status(ctx, sid, live.tasks, live.members),
            queue=[_queue_entry(t, live, ctx.now) for t in _waiting(live.tasks)],
            agents=[_agent_entry(a, sid, ctx.catalog, ctx.now) for a in _roster(live)],
            sessions=[_live_session(s, live.agents) for s in live.sessions],
            figures=await day_figures(ctx, service, day_start, live.tasks)
            if figures_for is None or sid in figures_for else None))
    return found


async def _read_live(ctx: Ctx, service_ids: Sequence[str]) -> dict[str, _Live]:
    """The services' live tasks, members and the sessions of those tasks: one read of the
    live tasks, one of each roster, one per open session."""
    lives = {sid: _Live() for sid in service_ids}
    for task in await ctx.uow.tasks.live():
        if task.service_id in lives:
            lives[task.service_id].tasks.append(task)
    for sid, live in lives.items():
        live.members = await ctx.uow.agents.members(sid)
        live.agents = {a.id: a for a in live.members}
        for task in live.tasks:
            for session_id in [*task.ringing, *([task.session_id] if task.session_id else [])]:
                session = await ctx.uow.sessions.get(session_id)
                if session is None or session.phase is Phase.ENDED:
                    continue
                live.sessions.append(session)
                if session.agent_id not in live.agents:  # no longer a member, still at work
                    agent = await ctx.uow.agents.get(session.agent_id)
                    if agent is not None:
                        live.agents[agent.id] = agent
        live.sessions.sort(key=lambda s: (_session_since(s), s.id))
    return lives


def _roster(live: _Live) -> list[Agent]:
    return sorted(live.agents.values(), key=lambda a: (a.name.lower(), a.id))


def _waiting(tasks: Iterable[Task]) -> list[Task]:
    """Queued and ringing tasks, in the order the queue offers them."""
    waiting = [t for t in tasks if t.state in (TaskState.QUEUED, TaskState.RINGING)]
    return sorted(waiting, key=lambda t: (-t.priority, t.enqueued_at, t.id))


def _queue_entry(task: Task, live: _Live, now: datetime) -> QueueEntry:
    ringing = tuple(s.agent_id for s in live.sessions
                    if s.task_id == task.id and s.phase is Phase.RINGING)
    return QueueEntry(task_id=task.id, customer=task.customer_label,
                      modality=task.modality.value, state=task.state.value,
                      priority=task.priority, queued_at=task.enqueued_at,
                      waiting=now - task.enqueued_at, call_flow=tuple(task.call_flow),
                      ringing=ringing)


def _agent_entry(agent: Agent, service_id: str, catalog: Catalog,
                 now: datetime) -> AgentEntry:
    state = derive_state(agent, catalog, now)
    since = agent.state_since
    if state is not AgentState.RONA and agent.rona_until is not None \
            and agent.rona_until <= now:
        since = agent.rona_until  # RONA ran out; no unit of work recorded it yet
    return AgentEntry(agent_id=agent.id, name=agent.name or agent.id, state=state,
                      since=since, in_state=now - since if since else None,
                      paused=service_id in agent.paused_services,
                      rona_until=agent.rona_until if agent.is_rona(now) else None,
                      sessions=len(agent.engagements))


def _session_since(session: Session) -> datetime:
    if session.phase is Phase.ACW and session.terminated_at:
        return session.terminated_at
    if session.phase is Phase.CONNECTED and session.connected_at:
        return session.connected_at
    return session.delivered_at or session.offered_at


def _live_session(session: Session, agents: dict[str, Agent]) -> LiveSession:
    agent = agents.get(session.agent_id)
    return LiveSession(session_id=session.id, task_id=session.task_id,
                       agent_id=session.agent_id,
                       agent=(agent.name if agent and agent.name else session.agent_id),
                       customer=session.customer_label or "", modality=session.modality.value,
                       phase=session.phase.value, since=_session_since(session))


# -- today's figures -----------------------------------------------------------------------


@dataclass
class _Hop:
    """A task's time queued in the service, from the sessions that offered it."""

    task_id: str
    queued_at: datetime
    answered_at: datetime | None = None
    last: Session | None = None


async def day_figures(ctx: Ctx, service: Service, day_start: datetime,
                      live_tasks: Sequence[Task] = ()) -> DayFigures:
    """Tasks per hour by result, the wait-time distribution and the service level, from the
    service's sessions offered in the 24 hours from `day_start` (the reporting export's read).

    A hop is answered when one of its offers was accepted (its wait: queued to accepted);
    else it ended as its task did (cancelled or expired, waiting until the task ended) or it
    is still waiting. A task that ended in the queue before any offer has no session and is
    not counted."""
    hops, partial = await _hops(ctx, service.id, day_start)
    live = {t.id: t for t in live_tasks}
    results: dict[str, int] = dict.fromkeys(RESULTS, 0)
    hours = _hour_starts(day_start, ctx.now)
    per_hour = [dict.fromkeys(RESULTS, 0) for _ in hours]
    answered = [0] * (len(WAIT_BOUNDS) + 1)
    unanswered = [0] * (len(WAIT_BOUNDS) + 1)
    within = 0
    for hop in hops:
        result, waited = await _hop_result(ctx, hop, live)
        results[result] += 1
        index = max(0, min(len(hours) - 1, (hop.queued_at - day_start) // HOUR))
        per_hour[index][result] += 1
        if waited is None:
            continue
        bucket = _bucket(waited)
        if result == ANSWERED:
            answered[bucket] += 1
            within += waited <= service.service_level
        else:
            unanswered[bucket] += 1
    decided = results[ANSWERED] + results[CANCELLED] + results[EXPIRED]
    return DayFigures(
        since=day_start,
        hours=[HourFigure(start, counts) for start, counts in zip(hours, per_hour, strict=True)],
        waits=[WaitBucket(bound, answered[i], unanswered[i])
               for i, bound in enumerate([*WAIT_BOUNDS, None])],
        results=results, answered_within=within, threshold=service.service_level,
        service_level=round(within / decided, 4) if decided else None, partial=partial)


async def _hops(ctx: Ctx, service_id: str, day_start: datetime) -> tuple[list[_Hop], bool]:
    """The service's hops with an offer in the day from `day_start`, from the reporting
    export's read."""
    where = SessionFilter(service_id=service_id, since=day_start, until=day_start + DAY)
    hops: dict[tuple[str, datetime], _Hop] = {}
    after: tuple[datetime, str] | None = None
    read = 0
    while True:
        scan = await ctx.uow.sessions.export(where, after, EXPORT_PAGE, EXPORT_SCAN)
        for session in scan.found:
            hop = hops.setdefault((session.task_id, session.queued_at),
                                  _Hop(session.task_id, session.queued_at))
            if session.connected_at is not None and (
                    hop.answered_at is None or session.connected_at < hop.answered_at):
                hop.answered_at = session.connected_at
            hop.last = session  # the export goes oldest offer first
        read += len(scan.found)
        after = scan.resume
        if after is None:
            return list(hops.values()), False
        if read >= MAX_DAY_SESSIONS:
            return list(hops.values()), True


async def _hop_result(ctx: Ctx, hop: _Hop,
                      live: dict[str, Task]) -> tuple[str, timedelta | None]:
    if hop.answered_at is not None:
        return ANSWERED, hop.answered_at - hop.queued_at
    task = live.get(hop.task_id) or await ctx.uow.tasks.get(hop.task_id)
    if task is not None and task.state in (TaskState.CANCELLED, TaskState.EXPIRED) \
            and task.enqueued_at == hop.queued_at and task.ended_at is not None:
        result = CANCELLED if task.state is TaskState.CANCELLED else EXPIRED
        return result, task.ended_at - hop.queued_at
    return WAITING, None


def _hour_starts(day_start: datetime, now: datetime) -> list[datetime]:
    """The start of every hour from `day_start` to the one `now` falls in (at least one)."""
    count = max(1, min(DAY // HOUR, (now - day_start) // HOUR + 1))
    return [day_start + i * HOUR for i in range(count)]


def _bucket(waited: timedelta) -> int:
    seconds = waited.total_seconds()
    return next((i for i, bound in enumerate(WAIT_BOUNDS) if seconds <= bound),
                len(WAIT_BOUNDS))
