"""Creating tasks and offering queued tasks to available agents."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from bot.domain import events as ev
from bot.domain.agent import Agent, Engagement, availability, can_take
from bot.domain.customer import Customer
from bot.domain.errors import Invalid
from bot.domain.ids import new_id
from bot.domain.message import Kind
from bot.domain.routing import candidates_needed, held_back, next_hold_end, pick_agents
from bot.domain.service import Modality
from bot.domain.session import Session
from bot.domain.task import Task, TaskState
from bot.domain.timers import DECLINE_HOLD, DELIVERY_DEADLINE, QUEUE_TIMEOUT, RING_TIMEOUT
from bot.services.context import Ctx

QUEUE_SCAN = 50


async def create_task(ctx: Ctx, service_id: str, modality: Modality, *,
                      customer: Customer | None = None, content: dict[str, Any] | None = None,
                      priority: int | None = None, task_id: str | None = None,
                      channel: dict[str, Any] | None = None) -> Task:
    """Queue a new task in a service and offer it at once if an agent is free."""
    service = ctx.service(service_id)
    if modality not in service.modalities:
        raise Invalid(f"Service {service.name!r} does not take {modality.value} tasks.",
                      field="modality")
    customer = customer or Customer()
    label = customer.name.strip()
    if not label:
        label = f"Visitor {await ctx.uow.counters.next('visitor:' + service_id)}"
    task = Task(
        id=task_id or new_id(),
        service_id=service_id,
        modality=modality,
        created_at=ctx.now,
        enqueued_at=ctx.now,
        customer=customer,
        customer_label=label,
        content=dict(content or {}),
        priority=service.distribution.priority if priority is None else priority,
        call_flow=[service_id],
        channel=dict(channel or {}),
    )
    await ctx.uow.tasks.add(task)
    await ctx.emit(ev.TASK_CREATED, task=task, modality=modality.value)
    await ctx.tell_customer(task, Kind.QUEUED)
    await arm_queue_timeout(ctx, task)
    await dispatch(ctx, service_id)
    return task


async def arm_queue_timeout(ctx: Ctx, task: Task) -> None:
    limit = ctx.service(task.service_id).distribution.max_queue_time
    if limit > timedelta(0):
        await ctx.arm(QUEUE_TIMEOUT, task.id, task.enqueued_at + limit)
    else:
        await ctx.cancel(QUEUE_TIMEOUT, task.id)


async def guard_queue(ctx: Ctx, service_id: str) -> None:
    """Conflict with any other unit of work deciding on this service's queue at the same time
    (on a store that does not serialise units of work, two must not both decide on the other's
    past): every dispatch, and a supervisor's offer to one agent."""
    await ctx.uow.guard(f"dispatch|{service_id}")


async def dispatch(ctx: Ctx, service_id: str) -> int:
    """Offer the service's queued tasks, best first, while agents are available. Returns offers."""
    await guard_queue(ctx, service_id)
    queued = await ctx.uow.tasks.queued(service_id, QUEUE_SCAN)
    if not queued:
        return 0
    blocked: set[Modality] = set()
    offered = 0
    for task in queued:
        if task.modality in blocked:
            continue
        chosen = await choose_agents(ctx, task)
        if not chosen:
            if not task.declined:  # held-back decliners may still take the next task
                blocked.add(task.modality)
            continue
        await offer(ctx, task, chosen)
        offered += len(chosen)
    return offered


async def choose_agents(ctx: Ctx, task: Task) -> list[Agent]:
    """`pick_agents` over the longest-idle agents the availability index offers for the task:
    as many as it rings plus the ones it already tried (who come last), never every member.

    `can_take` stays the final word: should the index name an agent who cannot take the task
    (an entry written before some change it missed), more are read until enough can.
    """
    want = candidates_needed(task, ctx.catalog)
    limit = want
    while True:
        found = [ctx.remember(a) for a in await ctx.uow.agents.available(
            task.service_id, task.modality, ctx.now, limit)]
        able = [a for a in found
                if can_take(a, task.service_id, task.modality, ctx.catalog, ctx.now)]
        if len(able) >= want or len(found) < limit:
            held: set[str] = set()
            if task.declined and any(a.id in task.declined for a in able):
                roster = await ctx.uow.agents.members(task.service_id)
                held = held_back(task, roster, ctx.catalog, ctx.now)
            return pick_agents(task, able, ctx.catalog, ctx.now, held=held)
        limit += want - len(able)


async def decline_hold_over(ctx: Ctx, task_id: str) -> None:
    """A decline hold ran out: the decliner may be offered the task again."""
    task = await ctx.uow.tasks.get(task_id)
    if task is None or task.state is not TaskState.QUEUED:
        return
    await dispatch(ctx, task.service_id)
    await arm_decline_hold(ctx, task)


async def arm_decline_hold(ctx: Ctx, task: Task) -> None:
    """A timer for the end of the next decline hold on a queued task (none: no timer)."""
    end = next_hold_end(task, ctx.catalog, ctx.now) if task.state is TaskState.QUEUED else None
    if end is None:
        await ctx.cancel(DECLINE_HOLD, task.id)
    else:
        await ctx.arm(DECLINE_HOLD, task.id, end)


async def index_agents(ctx: Ctx) -> int:
    """Bring the availability index in line with this start's catalog (capacities, duty
    profiles and memberships may have changed while the app was down). Run at start-up, after
    the memberships are synced; writes only entries that changed. Returns the agents checked."""
    checked = 0
    for agent in await ctx.uow.agents.registered():
        await ctx.uow.agents.set_availability(agent, availability(agent, ctx.catalog))
        checked += 1
    return checked


async def redispatch(ctx: Ctx, service_ids: Iterable[str]) -> None:
    """Dispatch in each service once, in order of first appearance."""
    for service_id in dict.fromkeys(service_ids):
        if service_id in ctx.catalog.services:
            await dispatch(ctx, service_id)


async def offer(ctx: Ctx, task: Task, agents: list[Agent]) -> None:
    service = ctx.service(task.service_id)
    ring_timeout = service.distribution.ring_timeout
    for agent in agents:
        session = Session(
            id=new_id(),
            task_id=task.id,
            agent_id=agent.id,
            service_id=task.service_id,
            modality=task.modality,
            offered_at=ctx.now,
            queued_at=task.enqueued_at,
            ring_until=ctx.now + ring_timeout,
            service_name=service.name,
            customer=task.customer,
            customer_label=task.customer_label,
            subject=str(task.content.get("subject", "")) if task.modality is Modality.EMAIL
            else "",
            # Its card goes to the agent's Teams chat: the ring starts when Teams took it.
            awaits_delivery=ctx.cards_delivered and bool(agent.conversation),
        )
        agent.engagements.append(Engagement(
            session_id=session.id, task_id=task.id, service_id=task.service_id,
            modality=task.modality, phase="ringing",
        ))
        # The agent row is the capacity guard: write it first so a lost race aborts early.
        await ctx.save_agent(agent)
        await ctx.add_session(session)
        task.ring(session.id, agent.id)
        await ctx.arm(RING_TIMEOUT, session.id,
                      ctx.now + DELIVERY_DEADLINE if session.awaits_delivery
                      else session.ring_until)
        await ctx.emit(ev.OFFER_CREATED, task=task, session=session)
    await ctx.uow.tasks.save(task)
