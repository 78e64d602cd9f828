"""The agent's own actions: install, register, duty profile, RONA reset, not-available reasons."""

from __future__ import annotations

from typing import Any

from bot.domain import events as ev
from bot.domain.agent import Agent, NarRequest
from bot.domain.errors import Invalid, NotFound
from bot.domain.ids import new_id
from bot.domain.session import Phase, SessionResult
from bot.domain.timers import RONA_RESET, SYNC_CARD
from bot.services.context import Ctx
from bot.services.dispatch import redispatch
from bot.services.offers import end_offer, release_task


async def installed(ctx: Ctx, agent_id: str, name: str,
                    conversation: dict[str, Any]) -> Agent:
    """The app was installed in the agent's personal scope: remember how to reach them."""
    agent = await ctx.agent(agent_id)
    if agent is None:
        agent = ctx.remember(Agent(id=agent_id, name=name, conversation=conversation))
        await ctx.uow.agents.add(agent)
        return agent
    agent.conversation = conversation
    agent.name = name or agent.name
    await ctx.save_agent(agent)
    return agent


async def require_agent(ctx: Ctx, agent_id: str) -> Agent:
    agent = await ctx.agent(agent_id)
    if agent is None:
        raise NotFound("Install the app in your personal chat first.")
    return agent


async def register(ctx: Ctx, agent_id: str, *, name: str, upn: str | None,
                   object_id: str | None) -> Agent:
    agent = await require_agent(ctx, agent_id)
    agent.name = name or agent.name
    agent.upn = upn
    agent.object_id = object_id
    agent.services = list(ctx.catalog.memberships(upn, object_id))
    was_registered = agent.registered
    agent.registered = True
    if not was_registered:
        agent.idle_since = ctx.now
    await ctx.save_agent(agent)
    if not was_registered:
        await ctx.emit(ev.AGENT_REGISTERED, agent_id=agent.id, services=agent.services)
    await redispatch(ctx, agent.services)
    return agent


async def unregister(ctx: Ctx, agent_id: str) -> Agent:
    """No more invitations; offers ringing now are declined, connected sessions go on."""
    agent = await require_agent(ctx, agent_id)
    agent.registered = False
    await _decline_ringing(ctx, agent, note="The agent unregistered.")
    await clear_rona(ctx, agent)
    await ctx.save_agent(agent)
    await ctx.emit(ev.AGENT_UNREGISTERED, agent_id=agent.id)
    await redispatch(ctx, agent.services)  # a decliner held back for this agent goes first now
    return agent


async def _decline_ringing(ctx: Ctx, agent: Agent, *, note: str) -> None:
    for engagement in [e for e in agent.engagements if e.phase == "ringing"]:
        session = await ctx.uow.sessions.get(engagement.session_id)
        if session is None or session.phase is not Phase.RINGING:
            agent.drop_engagement(engagement.session_id)
            continue
        task = await ctx.task(session.task_id)
        await end_offer(ctx, session, SessionResult.DECLINED, task, note=note)
        await release_task(ctx, task)
        await redispatch(ctx, [task.service_id])


async def set_duty(ctx: Ctx, agent_id: str, profile: str) -> Agent:
    agent = await require_agent(ctx, agent_id)
    name = ctx.catalog.profile_name(profile)
    if name is None:
        known = ", ".join(p for p, _ in ctx.catalog.profiles)
        raise Invalid(f"There is no profile {profile!r}. Profiles: {known}.", field="profile")
    on_duty = ctx.catalog.profile_on_duty(name)
    previous_on_duty = ctx.catalog.profile_on_duty(agent.profile)
    agent.profile = name
    if not on_duty:
        await clear_rona(ctx, agent)
        if previous_on_duty:
            agent.nar_requests.append(
                NarRequest(id=new_id(), created_at=ctx.now, trigger=f"profile:{name}"))
        await _decline_ringing(ctx, agent, note=f"The agent switched to {name}.")
    elif not previous_on_duty:
        agent.idle_since = ctx.now
    await ctx.save_agent(agent)
    # On duty: the agent may take tasks; off duty: decliners held back for them may now.
    await redispatch(ctx, agent.services)
    return agent


async def clear_rona(ctx: Ctx, agent: Agent) -> None:
    """Drop the RONA flag; the card that offered Reset RONA follows."""
    agent.rona_until = None
    await ctx.cancel(RONA_RESET, agent.id)
    if agent.rona_session:
        await ctx.arm(SYNC_CARD, agent.rona_session, ctx.now)
        agent.rona_session = None


async def reset_rona(ctx: Ctx, agent_id: str) -> Agent:
    agent = await require_agent(ctx, agent_id)
    if agent.rona_until is not None:
        await clear_rona(ctx, agent)
        await ctx.save_agent(agent)
        await redispatch(ctx, agent.services)
    return agent


async def rona_expired(ctx: Ctx, agent_id: str) -> None:
    agent = await ctx.agent(agent_id)
    if agent is None or agent.rona_until is None:
        return
    if agent.rona_until > ctx.now:
        await ctx.arm(RONA_RESET, agent.id, agent.rona_until)
        return
    await ctx.save_agent(agent)  # saving clears the expired flag and records the change
    await redispatch(ctx, agent.services)


async def fill_nar(ctx: Ctx, agent_id: str, request_id: str, reason: str) -> Agent:
    agent = await require_agent(ctx, agent_id)
    if reason not in ctx.catalog.nar_reasons:
        raise Invalid(f"{reason!r} is not a not-available reason.", field="nar_reason")
    request = next((r for r in agent.pending_nar(ctx.now) if r.id == request_id), None)
    if request is None:
        raise Invalid("That request was already answered or has expired.", field="request_id")
    request.reason = reason
    request.filled_at = ctx.now
    # Answered and expired requests are history; keep the record bounded.
    agent.nar_requests = [r for r in agent.nar_requests if r.reason is None] + [request]
    await ctx.save_agent(agent)
    await ctx.emit(ev.NAR_FILLED, agent_id=agent.id, reason=reason, trigger=request.trigger)
    return agent


async def sync_memberships(ctx: Ctx) -> int:
    """Recompute service memberships after the services file changed; returns agents updated."""
    changed = 0
    for agent in await ctx.uow.agents.registered():
        agent = ctx.remember(agent)
        services = list(ctx.catalog.memberships(agent.upn, agent.object_id))
        if services != agent.services:
            agent.services = services
            await ctx.save_agent(agent)
            changed += 1
    return changed


async def set_service_duty(ctx: Ctx, agent_id: str, service_id: str, on: bool) -> Agent:
    """Switch the agent's responsibility for one service off or on; the others stay."""
    agent = await require_agent(ctx, agent_id)
    if service_id not in agent.services:
        raise Invalid("You are not a member of that service.", field="service")
    paused = [s for s in agent.paused_services if s != service_id]
    if not on:
        paused.append(service_id)
    if paused == agent.paused_services:
        return agent
    agent.paused_services = paused
    await ctx.save_agent(agent)
    await ctx.emit(ev.AGENT_SERVICE_SWITCHED, agent_id=agent.id, service_id=service_id, on=on)
    # On: the agent may take the service's tasks; off: decliners held back for them may.
    await redispatch(ctx, [service_id])
    return agent
