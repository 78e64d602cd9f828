"""A task after the offer: cancel, expire, terminate, after-call work, transfer, chat failures."""

from __future__ import annotations

from datetime import timedelta

from bot.domain import events as ev
from bot.domain.errors import Refused, Stale
from bot.domain.message import Kind
from bot.domain.session import CANCEL_NOTES, Phase, Session, SessionResult
from bot.domain.task import Task, TaskResult, TaskState
from bot.domain.timers import ACW_END, IDLE_TIMEOUT, QUEUE_TIMEOUT, RELAY, STALE_SWEEP
from bot.services import privacy
from bot.services.context import Ctx
from bot.services.dispatch import arm_queue_timeout, dispatch, redispatch
from bot.services.offers import end_offer
from bot.services.ports import ConflictError


async def cancel_task(ctx: Ctx, task_id: str, *, by: str = "customer") -> Task:
    """The customer left: before Accept the task is cancelled; after it, the session ends."""
    task = await ctx.task(task_id)
    if task.state in (TaskState.QUEUED, TaskState.RINGING):
        await _close_unanswered(ctx, task, SessionResult.CANCELLED, TaskState.CANCELLED,
                                TaskResult.CANCELLED, ev.TASK_CANCELLED, by=by)
    elif task.state is TaskState.CONNECTED and task.session_id:
        await terminate(ctx, task.session_id, by=by)
    return task


UNANSWERED = (TaskState.QUEUED, TaskState.RINGING)  # a task nobody accepted yet


async def withdraw(ctx: Ctx, task: Task, *, by: str, verb: str = "withdrawn") -> Task:
    """Withdraw a task nobody accepted yet (its offers end as cancelled, their cards say who
    withdrew it); withdrawn twice, nothing more; Stale once someone accepted it."""
    if task.state in UNANSWERED:
        return await cancel_task(ctx, task.id, by=by)
    if task.state is TaskState.CANCELLED:
        return task
    raise Stale(f"The task can no longer be {verb}: it is {task.state.value}.")


async def expire_task(ctx: Ctx, task_id: str) -> None:
    """Maximum queue time reached: the task ends as not handled."""
    task = await ctx.uow.tasks.get(task_id)
    if task is None or task.state not in (TaskState.QUEUED, TaskState.RINGING):
        return
    if ctx.now < task.enqueued_at + ctx.service(task.service_id).distribution.max_queue_time:
        return
    await _close_unanswered(ctx, task, SessionResult.EXPIRED, TaskState.EXPIRED,
                            TaskResult.NOT_HANDLED, ev.TASK_EXPIRED, by="system")


async def _close_unanswered(ctx: Ctx, task: Task, result: SessionResult, state: TaskState,
                            task_result: TaskResult, event: str, *, by: str) -> None:
    freed: list[str] = []
    for session_id in list(task.ringing):
        session = await ctx.uow.sessions.get(session_id)
        if session is None:
            # Listed, not stored yet: another instance's commit is under way (on Cosmos DB it
            # writes the task before the sessions it offers). Ending the task now would leave
            # that offer ringing for a finished task: decide again once it is there.
            raise ConflictError(f"task {task.id} lists an offer that is not stored yet")
        if session.phase is Phase.RINGING:
            freed += await end_offer(ctx, session, result, task,
                                     note=CANCEL_NOTES.get(by, "") if result is
                                     SessionResult.CANCELLED else "")
    task.finish(state, task_result, ctx.now)
    await ctx.uow.tasks.save(task)
    await ctx.cancel(QUEUE_TIMEOUT, task.id)
    await ctx.cancel(IDLE_TIMEOUT, task.id)
    await ctx.emit(event, task=task, by=by)
    if state is TaskState.EXPIRED:
        await ctx.tell_customer(task, Kind.EXPIRED, ctx.service(task.service_id).offline_message)
    else:
        await ctx.tell_customer(task, Kind.ENDED, by=by)
    await privacy.conclude(ctx, task)  # after the last row the customer is told
    await redispatch(ctx, freed)


async def connected_session(ctx: Ctx, session_id: str, agent_id: str | None) -> Session:
    return await ctx.own_session(session_id, agent_id, phase=Phase.CONNECTED,
                                 ended="This session has already ended.")


async def terminate(ctx: Ctx, session_id: str, *, by: str = "agent",
                    agent_id: str | None = None) -> Session:
    """End a connected session; after-call work follows when the service has it."""
    session = await connected_session(ctx, session_id, agent_id)
    task = await ctx.task(session.task_id)
    await _end_connection(ctx, session, task, by=by)
    return session


async def _end_connection(ctx: Ctx, session: Session, task: Task, *, by: str,
                          transferring: str | None = None, note: str = "") -> None:
    """End the connection; `transferring` names the service the task has just moved to."""
    acw = ctx.service(session.service_id).acw
    owns_task = task.session_id == session.id and not transferring
    session.terminate(ctx.now, acw.duration if acw.enabled else None, note=note,
                      transferred_to=transferring)
    if acw.enabled:
        if owns_task:
            task.start_wrapup()
        assert session.acw_until is not None
        await ctx.arm(ACW_END, session.id, session.acw_until)
    elif owns_task:
        task.finish(TaskState.DONE, TaskResult.HANDLED, ctx.now)
    await ctx.save_session(session)
    await ctx.uow.tasks.save(task)
    agent = await ctx.agent(session.agent_id)
    if agent is not None:
        if acw.enabled:
            engagement = agent.engagement(session.id)
            if engagement is not None:
                engagement.phase = "acw"
        else:
            agent.drop_engagement(session.id)
            agent.idle_since = ctx.now
        await ctx.save_agent(agent)
    await ctx.emit(ev.SESSION_TERMINATED, task=task, session=session, by=by)
    if transferring:
        await ctx.tell_customer(task, Kind.QUEUED, transfer=ctx.service(task.service_id).name)
    elif owns_task:
        await ctx.cancel(IDLE_TIMEOUT, task.id)
        await ctx.tell_customer(task, Kind.ENDED, by=by)
    if acw.enabled:
        await ctx.emit(ev.ACW_STARTED, task=task, session=session,
                       seconds=acw.duration.total_seconds())
    elif owns_task:
        await ctx.emit(ev.TASK_DONE, task=task, session=session)
        await privacy.conclude(ctx, task)
    if not acw.enabled and agent is not None:
        await redispatch(ctx, agent.services)


async def acw_session(ctx: Ctx, session_id: str, agent_id: str | None) -> Session:
    return await ctx.own_session(session_id, agent_id, phase=Phase.ACW,
                                 ended="After-call work has already ended.")


async def end_acw(ctx: Ctx, session_id: str, *, agent_id: str | None = None,
                  early: bool = True) -> Session:
    session = await acw_session(ctx, session_id, agent_id)
    if early and not ctx.service(session.service_id).acw.allow_early_end:
        raise Refused("This service does not allow ending after-call work early.")
    await _finish_acw(ctx, session)
    return session


async def acw_timeout(ctx: Ctx, session_id: str) -> None:
    session = await ctx.uow.sessions.get(session_id)
    if session is None or session.phase is not Phase.ACW:
        return
    if session.acw_until is not None and session.acw_until > ctx.now:
        await ctx.arm(ACW_END, session.id, session.acw_until)
        return
    await _finish_acw(ctx, session)


async def _finish_acw(ctx: Ctx, session: Session) -> None:
    session.end_acw(ctx.now)
    await ctx.save_session(session)
    await ctx.cancel(ACW_END, session.id)
    task = await ctx.task(session.task_id)
    if task.session_id == session.id and task.state is TaskState.WRAPUP:
        task.finish(TaskState.DONE, TaskResult.HANDLED, ctx.now)
        await ctx.uow.tasks.save(task)
    agent = await ctx.agent(session.agent_id)
    if agent is not None:
        agent.drop_engagement(session.id)
        agent.idle_since = ctx.now
        await ctx.save_agent(agent)
    await ctx.emit(ev.ACW_ENDED, task=task, session=session)
    if task.state is TaskState.DONE and task.session_id == session.id:
        await ctx.emit(ev.TASK_DONE, task=task, session=session)
        await privacy.conclude(ctx, task)
    if agent is not None:
        await redispatch(ctx, agent.services)


async def extend_acw(ctx: Ctx, session_id: str, *, agent_id: str | None = None) -> Session:
    """An extension adds the maximum extension time to the time left; once per session."""
    session = await acw_session(ctx, session_id, agent_id)
    acw = ctx.service(session.service_id).acw
    if not acw.extendable:
        raise Refused("This service does not allow extending after-call work.")
    session.extend_acw(ctx.now, acw.max_extension)  # refused when extended before
    await ctx.save_session(session)
    assert session.acw_until is not None
    await ctx.arm(ACW_END, session.id, session.acw_until)
    await ctx.emit(ev.ACW_EXTENDED, session=session, seconds=acw.max_extension.total_seconds())
    return session


async def transfer(ctx: Ctx, session_id: str, target_service_id: str, *,
                   agent_id: str | None = None) -> Task:
    """Re-queue a connected task in another service; the call flow keeps every hop."""
    session = await connected_session(ctx, session_id, agent_id)
    target = ctx.service(target_service_id)
    task = await ctx.task(session.task_id)
    if target.id == task.service_id:
        raise Refused("The task is already in that service.")
    if task.modality not in target.modalities:
        raise Refused(f"{target.name} does not take {task.modality.value} tasks.")
    await privacy.close_hop(ctx, task, task.service_id)
    task.transfer(target.id, ctx.now)
    await _end_connection(ctx, session, task, by="transfer", transferring=target.id)
    await ctx.emit(ev.TASK_TRANSFERRED, task=task, session=session,
                   source=session.service_id, target=target.id)
    await arm_queue_timeout(ctx, task)
    await dispatch(ctx, target.id)
    return task


async def chat_failed(ctx: Ctx, session_id: str, reason: str) -> None:
    """The chatroom could not be created: the task goes back to the queue, nothing stays stuck."""
    session = await ctx.uow.sessions.get(session_id)
    if session is None or session.phase is not Phase.CONNECTED or session.chat_id:
        return
    task = await ctx.task(session.task_id)
    session.fail_chat(ctx.now, reason)
    await ctx.save_session(session)
    agent = await ctx.agent(session.agent_id)
    if agent is not None:
        agent.drop_engagement(session.id)
        await ctx.save_agent(agent)
    requeued = task.session_id == session.id and task.state is TaskState.CONNECTED
    if requeued:
        task.requeue(task.service_id, task.enqueued_at, tried=[session.agent_id])
        await ctx.uow.tasks.save(task)
        await arm_queue_timeout(ctx, task)
        await ctx.tell_customer(task, Kind.QUEUED)
    await ctx.emit(ev.OFFER_FAILED, task=task, session=session)
    if requeued:  # as after any offer that ended without a chat: the record says it queues
        await ctx.emit(ev.TASK_QUEUED, task=task)
    await redispatch(ctx, [task.service_id, *(agent.services if agent else [])])


async def chat_opened(ctx: Ctx, session_id: str, chat_id: str,
                      chat_url: str | None) -> Session | None:
    """The chatroom exists: remember it, and bring it up to date (header, then messages)."""
    session = await ctx.uow.sessions.get(session_id)
    if session is None or session.phase is not Phase.CONNECTED or session.chat_id:
        return None
    session.open_chat(chat_id, chat_url)
    await ctx.save_session(session)
    await ctx.arm(RELAY, session.id, ctx.now)
    return session


async def stale_sweep(ctx: Ctx) -> int:
    """Terminate sessions connected longer than the limit; runs again after the interval."""
    cutoff = ctx.now - ctx.catalog.stale_session_after
    swept = 0
    for session in await ctx.uow.sessions.connected_before(cutoff):
        task = await ctx.task(session.task_id)
        await _end_connection(ctx, session, task, by="system",
                              note="Ended automatically: connected for too long.")
        swept += 1
    await ctx.arm_in(STALE_SWEEP, "all", max(ctx.catalog.stale_sweep_every, timedelta(seconds=10)))
    return swept
