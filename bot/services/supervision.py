"""What a supervisor may do from the board: withdraw or hand out a queued task, clear an agent's
RONA, set an agent off duty. Each checks that the caller supervises the service first."""

from __future__ import annotations

from bot.domain import events as ev
from bot.domain.agent import Agent, AgentState, can_take, derive_state
from bot.domain.errors import Invalid, NotFound, Refused, Stale
from bot.domain.service import Service
from bot.domain.task import Task, TaskState
from bot.services import agents as agent_cases
from bot.services import lifecycle
from bot.services.board import Supervisor, require_supervisor
from bot.services.context import Ctx
from bot.services.dispatch import guard_queue, offer

SUPERVISOR = "supervisor"  # who ended a withdrawn task (`lifecycle.cancel_task(by=...)`)

STATE_WORDS = {
    AgentState.UNREGISTERED: "not registered", AgentState.OFF_DUTY: "off duty",
    AgentState.NOT_AVAILABLE: "not available", AgentState.RONA: "in RONA",
    AgentState.RINGING: "being offered a task", AgentState.BUSY: "busy",
    AgentState.ACW: "in after-call work", AgentState.AVAILABLE: "available",
}


async def _supervised_task(ctx: Ctx, who: Supervisor, task_id: str) -> tuple[Task, Service]:
    task = await ctx.uow.tasks.get(task_id)
    if task is None:
        raise NotFound("There is no such task.")
    return task, require_supervisor(ctx, who, task.service_id)


async def _member(ctx: Ctx, service: Service, agent_id: str) -> Agent:
    agent = await ctx.agent(agent_id)
    if agent is None or not agent.registered or service.id not in agent.services:
        raise NotFound(f"There is no registered agent {agent_id!r} in {service.name}.")
    return agent


async def withdraw(ctx: Ctx, who: Supervisor, task_id: str) -> Task:
    """Withdraw a task nobody accepted yet, as the task API does: its offers end as
    cancelled and their cards say a supervisor withdrew it. Withdrawn twice: nothing more."""
    task, _service = await _supervised_task(ctx, who, task_id)
    if task.state in lifecycle.UNANSWERED:
        await _acted(ctx, who, "withdraw", task=task)
    return await lifecycle.withdraw(ctx, task, by=SUPERVISOR)


async def offer_to(ctx: Ctx, who: Supervisor, task_id: str, agent_id: str) -> Task:
    """Offer a queued task to one available agent of its service now: an invitation like any
    other (card, ring timeout, RONA)."""
    task, service = await _supervised_task(ctx, who, task_id)
    await guard_queue(ctx, service.id)
    if task.state is TaskState.RINGING:
        raise Stale("The task is being offered already; wait for the answer or withdraw it.")
    if task.state is not TaskState.QUEUED:
        raise Stale(f"The task is no longer queued: it is {task.state.value}.")
    agent = await _member(ctx, service, agent_id)
    if not can_take(agent, service.id, task.modality, ctx.catalog, ctx.now):
        state = derive_state(agent, ctx.catalog, ctx.now)
        why = (f"they switched {service.name} off" if state is AgentState.AVAILABLE
               and service.id in agent.paused_services else f"they are {STATE_WORDS[state]}")
        raise Refused(f"{agent.name or agent.id} cannot take this task now: {why}.",
                      code="unavailable")
    await _acted(ctx, who, "offer", task=task, agent_id=agent.id)
    await offer(ctx, task, [agent])
    return task


async def reset_rona(ctx: Ctx, who: Supervisor, service_id: str, agent_id: str) -> Agent:
    """Clear an agent's RONA flag, as their own Reset RONA button does."""
    service = require_supervisor(ctx, who, service_id)
    agent = await _member(ctx, service, agent_id)
    if not agent.is_rona(ctx.now):
        raise Stale(f"{agent.name or agent.id} is not in RONA.")
    await _acted(ctx, who, "reset_rona", agent_id=agent.id, service_id=service.id)
    return await agent_cases.reset_rona(ctx, agent.id)


async def set_off_duty(ctx: Ctx, who: Supervisor, service_id: str, agent_id: str) -> Agent:
    """Put an agent on the off-duty profile, as if they chose it: offers ringing for them go
    back to the queue, connected sessions go on."""
    service = require_supervisor(ctx, who, service_id)
    agent = await _member(ctx, service, agent_id)
    profile = off_duty_profile(ctx)
    if agent.profile.lower() == profile.lower():
        return agent
    await _acted(ctx, who, "off_duty", agent_id=agent.id, service_id=service.id)
    return await agent_cases.set_duty(ctx, agent.id, profile)


async def _acted(ctx: Ctx, who: Supervisor, action: str, *, task: Task | None = None,
                 agent_id: str | None = None, service_id: str | None = None) -> None:
    """The record of who did what from the board (the supervisor as the services file names
    them), in the unit of work that does it."""
    await ctx.emit(ev.SUPERVISOR_ACTED, task=task, agent_id=agent_id, service_id=service_id,
                   action=action, supervisor=who.upn or who.object_id)


def off_duty_profile(ctx: Ctx) -> str:
    """The "Off Duty" profile, else the first profile that is not on duty."""
    off = [name for name, on_duty in ctx.catalog.profiles if not on_duty]
    if not off:
        raise Invalid("The services file declares no off-duty profile.", field="profile")
    return next((name for name in off if name.lower() == "off duty"), off[0])
