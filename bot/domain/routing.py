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


def pick_agents(task: Task, members: Iterable[Agent], catalog: Catalog,
                now: datetime) -> list[Agent]:
    """The agents to ring for a task: longest idle first, one (direct) or up to N (broadcast).

    Agents already tried since the task was (re)queued come last, so a decline or RONA moves
    the task on to the next agent; when everyone was tried, they may be offered again.
    """
    service = catalog.service(task.service_id)
    eligible = [
        a for a in members if can_take(a, task.service_id, task.modality, catalog, now)
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
