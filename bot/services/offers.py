"""Answers to an offer: accept, decline, no answer (RONA), and offers that end for other reasons."""

from __future__ import annotations

from bot.domain import events as ev
from bot.domain.agent import NarRequest, availability
from bot.domain.errors import Refused, Stale
from bot.domain.ids import new_id
from bot.domain.message import Kind
from bot.domain.service import DistributionMode, Modality
from bot.domain.session import RESULT_LABELS, Phase, Session, SessionResult
from bot.domain.task import Task
from bot.domain.timers import OPEN_CHAT, QUEUE_TIMEOUT, RING_TIMEOUT, RONA_RESET
from bot.services.context import Ctx
from bot.services.dispatch import arm_decline_hold, redispatch

_END_EVENTS = {
    SessionResult.DECLINED: ev.OFFER_DECLINED,
    SessionResult.RONA: ev.OFFER_TIMED_OUT,
    SessionResult.MISSED: ev.OFFER_TIMED_OUT,
    SessionResult.RESCINDED: ev.OFFER_RESCINDED,
    SessionResult.CANCELLED: ev.OFFER_CANCELLED,
    SessionResult.EXPIRED: ev.OFFER_EXPIRED,
}


async def ringing_session(ctx: Ctx, session_id: str, agent_id: str) -> Session:
    """The agent's own session, still ringing; a clear refusal for anything else."""
    session = await ctx.uow.sessions.get(session_id)
    if session is None:
        raise Stale("This invitation is no longer known.")
    if session.agent_id != agent_id:
        raise Refused("This invitation belongs to another agent.", code="forbidden")
    if session.phase is not Phase.RINGING:
        label = RESULT_LABELS[session.result] if session.result else session.phase.value
        raise Stale(f"This invitation is no longer active ({label}).")
    return session


async def accept(ctx: Ctx, session_id: str, agent_id: str) -> Session:
    session = await ringing_session(ctx, session_id, agent_id)
    task = await ctx.task(session.task_id)
    others = task.connect(session.id, agent_id, ctx.now)  # Stale when taken or ended
    await ctx.uow.tasks.save(task)
    session.accept(ctx.now)
    await ctx.save_session(session)
    await ctx.cancel(RING_TIMEOUT, session.id)
    await ctx.cancel(QUEUE_TIMEOUT, task.id)
    agent = await ctx.agent(agent_id)
    if agent is not None:
        engagement = agent.engagement(session.id)
        if engagement is not None:
            engagement.phase = "connected"
        await ctx.save_agent(agent)
    await ctx.tell_customer(task, Kind.ACCEPTED, agent=agent.name if agent else "An agent")
    await ctx.emit(ev.OFFER_ACCEPTED, task=task, session=session)
    await ctx.emit(ev.SESSION_CONNECTED, task=task, session=session)
    freed: list[str] = []
    for other_id in others:
        other = await ctx.uow.sessions.get(other_id)
        if other is not None and other.phase is Phase.RINGING:
            freed += await end_offer(ctx, other, SessionResult.RESCINDED, task)
    if task.modality is Modality.IM:  # email and external tasks need no chatroom
        await ctx.arm(OPEN_CHAT, session.id, ctx.now)
    # An agent with capacity left (multi-session) can take the next task at once; one with
    # none can take nothing this dispatch could offer (on Cosmos DB each dispatch of a service
    # takes its guard: one at a time across the fleet).
    takes_more = agent is not None and bool(availability(agent, ctx.catalog).slots)
    await redispatch(ctx, [*(agent.services if agent and takes_more else []), *freed])
    return session


async def decline(ctx: Ctx, session_id: str, agent_id: str) -> Session:
    session = await ringing_session(ctx, session_id, agent_id)
    task = await ctx.task(session.task_id)
    service = ctx.service(session.service_id)
    sets_rona = (service.distribution.persistent_rona
                 and service.distribution.mode is DistributionMode.DIRECT)
    freed = await end_offer(ctx, session, SessionResult.DECLINED, task, set_rona=sets_rona)
    if service.distribution.mode is DistributionMode.DIRECT:
        task.note_decline(agent_id, ctx.now)
    await release_task(ctx, task)
    await redispatch(ctx, [task.service_id, *freed])
    return session


UNDELIVERED_NOTE = "The invitation could not be shown in Teams."


async def ring_timeout(ctx: Ctx, session_id: str) -> None:
    """The ring timeout passed: RONA for a direct offer, a plain miss for a broadcast one.
    An offer whose card Teams never took (the delivery deadline passed) is a miss, no RONA."""
    session = await ctx.uow.sessions.get(session_id)
    if session is None or session.phase is not Phase.RINGING:
        return
    task = await ctx.task(session.task_id)
    if session.awaits_card:
        await card_undeliverable(ctx, session_id)
        return
    broadcast = ctx.service(session.service_id).distribution.mode is DistributionMode.BROADCAST
    result = SessionResult.MISSED if broadcast else SessionResult.RONA
    freed = await end_offer(ctx, session, result, task, set_rona=not broadcast)
    await release_task(ctx, task)
    await redispatch(ctx, [task.service_id, *freed])


async def card_undeliverable(ctx: Ctx, session_id: str) -> None:
    """Teams never showed the offer's card (refused it, or not by the delivery deadline):
    the offer ends as missed without RONA, and the task goes on to another agent."""
    session = await ctx.uow.sessions.get(session_id)
    if session is None or not session.awaits_card:
        return
    task = await ctx.task(session.task_id)
    freed = await end_offer(ctx, session, SessionResult.MISSED, task, note=UNDELIVERED_NOTE)
    await release_task(ctx, task)
    await redispatch(ctx, [task.service_id, *freed])


async def end_offer(ctx: Ctx, session: Session, result: SessionResult, task: Task, *,
                    set_rona: bool = False, note: str = "") -> list[str]:
    """Close a ringing offer with a result; returns the services whose agent became free."""
    session.end_offer(ctx.now, result, note)
    await ctx.save_session(session)
    await ctx.cancel(RING_TIMEOUT, session.id)
    task.drop_offer(session.id)
    freed: list[str] = []
    agent = await ctx.agent(session.agent_id)
    if agent is not None:
        agent.drop_engagement(session.id)
        if set_rona and agent.registered:
            reset = ctx.service(session.service_id).distribution.rona_reset
            agent.rona_until = ctx.now + reset
            agent.rona_session = session.id
            agent.nar_requests.append(NarRequest(id=new_id(), created_at=ctx.now, trigger="rona"))
            await ctx.arm(RONA_RESET, agent.id, agent.rona_until)
        await ctx.save_agent(agent)
        freed = list(agent.services)
    await ctx.emit(_END_EVENTS[result], task=task, session=session, rona=set_rona)
    return freed


async def release_task(ctx: Ctx, task: Task) -> None:
    """After an offer ended without an accept: back to the queue when nothing rings any more."""
    if task.release():
        await ctx.emit(ev.TASK_QUEUED, task=task)
        await arm_decline_hold(ctx, task)
    await ctx.uow.tasks.save(task)
