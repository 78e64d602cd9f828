"""The live picture per service (queue, agents by state, sessions) and the jobs behind time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from bot.domain.agent import Agent, AgentState, derive_state
from bot.domain.task import Task, TaskState
from bot.services.context import Ctx

# A job still waiting this long after it fell due is overdue (the scheduler runs jobs due now
# within a second or two; one this late means instances are down, stuck or throttled).
OVERDUE_AFTER = timedelta(seconds=30)
JOBS_READ = 1_000  # timers read at most to count what is due


@dataclass(frozen=True)
class ServiceStatus:
    """One service now: tasks waiting (queued, or ringing an agent), the oldest wait, its
    members by derived state (every state present, 0 included), sessions connected and in
    after-call work."""

    service_id: str
    queued: int = 0
    ringing: int = 0
    oldest_wait_seconds: float | None = None
    agents: dict[str, int] = field(default_factory=dict)
    sessions_live: int = 0
    sessions_acw: int = 0

    @property
    def waiting(self) -> int:
        return self.queued + self.ringing


@dataclass(frozen=True)
class JobsStatus:
    """Timers and jobs due now, and how many of them are overdue (OVERDUE_AFTER)."""

    due: int
    overdue: int


async def services_status(ctx: Ctx) -> list[ServiceStatus]:
    """Every service of the catalog, in catalog order: one read of the live tasks, one of
    each service's members."""
    live = await ctx.uow.tasks.live()
    found: list[ServiceStatus] = []
    for service_id in ctx.catalog.services:
        members = await ctx.uow.agents.members(service_id)
        found.append(service_status(ctx, service_id,
                                    [t for t in live if t.service_id == service_id], members))
    return found


def service_status(ctx: Ctx, service_id: str, live: Sequence[Task],
                   members: Sequence[Agent]) -> ServiceStatus:
    """One service from its live tasks and its members: what /api/v1/status and the
    supervisor board (bot/services/board.py) both show."""
    waits = [(ctx.now - t.enqueued_at).total_seconds() for t in live
             if t.state in (TaskState.QUEUED, TaskState.RINGING)]
    ringing = sum(1 for t in live if t.state is TaskState.RINGING)
    return ServiceStatus(
        service_id=service_id,
        queued=len(waits) - ringing,
        ringing=ringing,
        oldest_wait_seconds=round(max(waits), 3) if waits else None,
        agents=_by_state(ctx, members),
        sessions_live=_engaged(members, service_id, "connected"),
        sessions_acw=_engaged(members, service_id, "acw"),
    )


def _by_state(ctx: Ctx, members: Sequence[Agent]) -> dict[str, int]:
    counts = dict.fromkeys((state.value for state in AgentState), 0)
    for agent in members:
        counts[derive_state(agent, ctx.catalog, ctx.now).value] += 1
    return counts


def _engaged(members: Sequence[Agent], service_id: str, phase: str) -> int:
    """Sessions of the service in `phase` among its members' engagements (each counted once)."""
    return len({e.session_id for agent in members for e in agent.engagements
                if e.service_id == service_id and e.phase == phase})


async def jobs_status(ctx: Ctx, kinds: Sequence[str]) -> JobsStatus:
    """Timers of `kinds` due now, at most JOBS_READ of them read."""
    due = await ctx.uow.timers.due(ctx.now, JOBS_READ, list(kinds))
    late = ctx.now - OVERDUE_AFTER
    return JobsStatus(due=len(due), overdue=sum(1 for timer in due if timer.due_at < late))
