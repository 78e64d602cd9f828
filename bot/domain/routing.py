"""Routing policy: which queued task goes next, and to which available agents."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TypeVar

from bot.domain.agent import Agent, can_take
from bot.domain.service import Catalog, DistributionMode
from bot.domain.task import Task

Stamp = TypeVar("Stamp", datetime, int)


def queue_key(priority: int, enqueued: Stamp, task_id: str) -> tuple[int, Stamp, str]:
    """The queue's order: higher priority first, then the longest waiting, then by id.
    `enqueued` is the task's enqueue time, or any stamp that sorts as it does (a store's
    microseconds), so stores can order rows and index entries that hold no `Task`."""
    return (-priority, enqueued, task_id)


def idle_key(agent: Agent) -> tuple[int, datetime | str, str]:
    """The order agents are offered in: longest idle first, then by id. Agents with no idle
    timestamp have been idle "forever": they sort first."""
    if agent.idle_since is None:
        return (0, "", agent.id)
    return (1, agent.idle_since, agent.id)


def recent_decliners(task: Task, catalog: Catalog, now: datetime) -> set[str]:
    """Agents who declined the task (direct distribution) less than `redecline_after` ago."""
    distribution = catalog.service(task.service_id).distribution
    if distribution.mode is not DistributionMode.DIRECT:
        return set()
    return {agent_id for agent_id, at in task.declined.items()
            if now < at + distribution.redecline_after}


def next_hold_end(task: Task, catalog: Catalog, now: datetime) -> datetime | None:
    """When the next decline hold on the task runs out (None: no hold runs)."""
    hold = catalog.service(task.service_id).distribution.redecline_after
    ends = [at + hold for at in task.declined.values() if at + hold > now]
    return min(ends) if ends else None


def could_serve(agent: Agent, service_id: str, catalog: Catalog) -> bool:
    """Whether the agent may be offered the service's tasks at some point without doing
    anything: registered, a member, on duty, responsible for the service."""
    return (agent.registered and service_id in agent.services
            and catalog.profile_on_duty(agent.profile) is not False
            and service_id not in agent.paused_services)


def held_back(task: Task, roster: Iterable[Agent], catalog: Catalog,
              now: datetime) -> set[str]:
    """The recent decliners who must wait: as long as another agent who could serve the
    service (`roster`, its members) has not been offered the task yet."""
    decliners = recent_decliners(task, catalog, now)
    if not decliners:
        return set()
    tried = set(task.tried)
    waiting = any(a.id not in decliners and a.id not in tried
                  and could_serve(a, task.service_id, catalog) for a in roster)
    return decliners if waiting else set()


def pick_agents(task: Task, members: Iterable[Agent], catalog: Catalog,
                now: datetime, *, held: Iterable[str] = ()) -> list[Agent]:
    """The agents to ring for a task: longest idle first, one (direct) or up to N (broadcast).

    Agents already tried since the task was (re)queued come last, so a decline or RONA moves
    the task on to the next agent; when everyone was tried, they may be offered again. `held`
    agents (recent decliners others may still take the task from) are not offered it.
    """
    service = catalog.service(task.service_id)
    skip = set(held)
    eligible = [
        a for a in members
        if a.id not in skip and can_take(a, task.service_id, task.modality, catalog, now)
    ]
    if not eligible:
        return []
    tried = set(task.tried)
    eligible.sort(key=lambda a: (a.id in tried, idle_key(a)))
    if service.distribution.mode is DistributionMode.BROADCAST:
        fresh = [a for a in eligible if a.id not in tried] or eligible
        return fresh[: max(1, service.distribution.broadcast_size)]
    return eligible[:1]


def candidates_needed(task: Task, catalog: Catalog) -> int:
    """How many of the longest-idle available agents `pick_agents` needs to see for the task.

    The ones it rings (one, or the broadcast size) plus the ones it already tried: among the
    first `ring + len(tried)` in idle order there are at least `ring` untried ones whenever the
    service has that many, so `pick_agents` over them chooses as over every member.
    """
    distribution = catalog.service(task.service_id).distribution
    ring = 1
    if distribution.mode is DistributionMode.BROADCAST:
        ring = max(1, distribution.broadcast_size)
    return ring + len(set(task.tried))
