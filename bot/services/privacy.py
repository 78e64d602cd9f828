"""Customer context over a task's life: kept while live, stored per opted-in hop, then purged.

- While a task is live its context (name, email, phone, parameters) is on the task and its
  sessions. Parameters accumulate over transfers: a later service may add or overwrite values,
  through the task API (PATCH) or a web request's answer (`set_context`).
- When a hop ends (a transfer away, or the task concluding) the sessions of that hop keep a
  snapshot of the live context and remember whether their service opted in then
  ("store conversation context data"): turning the option on later changes nothing. An opted-in
  hop's record also holds the conversation up to that moment (`Session.kept_through`): what its
  agent saw, as its parameters hold what earlier hops added.
- When the task concludes, every session whose service did not opt in loses its context, and
  the chat lines no opted-in hop's record holds are deleted (the customer's and the agents'
  words alike); the task keeps its first message or email only if some hop opted in. The rest
  goes RETENTION after the end, when a durable timer removes it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import timedelta

from bot.domain import events as ev
from bot.domain.customer import Customer
from bot.domain.errors import Invalid, Refused, Stale
from bot.domain.message import RELAY_BATCH, Kind, Sender
from bot.domain.session import Session
from bot.domain.task import Task
from bot.domain.timers import CONTEXT_PURGE
from bot.services.context import Ctx

RETENTION = timedelta(days=30)
MAX_PARAMS = 50
CHANNEL_KEPT = ("kind", "token_sha256")  # what identifies a chat, not who wrote it


async def set_params(ctx: Ctx, task_id: str, params: dict[str, str]) -> Task:
    """Add or overwrite custom parameters of a live task (later values win)."""
    return await set_context(ctx, task_id, params=params)


async def set_context(ctx: Ctx, task_id: str, *, params: dict[str, str] | None = None,
                      name: str | None = None, email: str | None = None,
                      phone: str | None = None, source: str = "api",
                      services: Collection[str] | None = None) -> Task:
    """Set or overwrite customer fields (None: left as they are) and parameters of a live
    task; the open cards of its current hop show the new values (their card jobs run again).
    A name set here comes from a trusted system: it is no longer marked unverified.
    With `services` (an API key's), the task must be in one of them now."""
    task = await ctx.task(task_id)
    if services is not None and task.service_id not in services:
        raise Refused("This API key may not change tasks of this service.", code="forbidden")
    if not task.state.live:
        raise Stale("The task has ended; its context can no longer change.")
    merged = {**task.customer.params, **{str(k): str(v) for k, v in (params or {}).items()}}
    if len(merged) > MAX_PARAMS:
        raise Invalid(f"A task can carry at most {MAX_PARAMS} parameters.", field="context")
    customer = replace(
        task.customer, params=merged,
        name=task.customer.name if name is None else name,
        email=task.customer.email if email is None else email,
        phone=task.customer.phone if phone is None else phone,
        unverified=task.customer.unverified and name is None)
    changed = customer != task.customer
    task.customer = customer
    if name:
        task.customer_label = name
    await ctx.uow.tasks.save(task)
    if not changed:
        return task
    for session in await ctx.uow.sessions.for_task(task.id):
        if session.store_context is None and session.live:  # the hop under way
            session.customer = task.customer
            session.customer_label = task.customer_label
            await ctx.save_session(session)  # arms its card job (SYNC_CARD)
    await ctx.emit(ev.TASK_CONTEXT_CHANGED, task=task, source=source,
                   params=sorted(str(k) for k in (params or {})))
    return task


async def close_hop(ctx: Ctx, task: Task, service_id: str) -> None:
    """The task leaves `service_id`: its sessions there keep the live context as it is now,
    and an opted-in hop the conversation so far."""
    opted_in = ctx.service(service_id).context.store_data
    kept_through: int | None = None
    for session in await ctx.uow.sessions.for_task(task.id):
        if session.service_id != service_id or session.store_context is not None:
            continue
        if kept_through is None:
            kept_through = await ctx.uow.messages.last_seq(task.id) if opted_in else 0
        session.customer = replace(task.customer, params=dict(task.customer.params))
        session.customer_label = task.customer_label
        session.keep_record(opted_in, kept_through)
        await ctx.uow.sessions.save(session)


async def conclude(ctx: Ctx, task: Task) -> None:
    """The task is over: remove context everywhere it was not opted in to be stored.

    Callers tell the customer's chat that it ended before this (`Ctx.tell_customer`): the
    rows deleted here are never the conversation's last, so its numbering goes on."""
    await close_hop(ctx, task, task.service_id)
    sessions = await ctx.uow.sessions.for_task(task.id)
    for session in sessions:
        if not session.store_context and session.customer is not None:
            await strip_session(ctx, session.id)
    kept = any(session.store_context for session in sessions)
    owed = await owed_to_chatroom(ctx, task.id, sessions)
    await _forget_lines(ctx, task.id, sessions, before=owed)
    task.customer = Customer()
    task.customer_label = ""
    # The content (first message, email subject, body, HTML and addresses, task description)
    # is part of every hop's record: kept while some hop opted in, until the purge.
    if not kept:
        task.content = {}
    task.channel = {k: v for k, v in task.channel.items() if k in CHANNEL_KEPT}
    await ctx.uow.tasks.save(task)
    if kept or owed is not None:  # lines still owed go once relayed, else at the purge
        await ctx.arm(CONTEXT_PURGE, task.id, ctx.now + RETENTION)


def _kept_through(sessions: list[Session]) -> int:
    """The chat lines an opted-in hop's record holds: up to this number (-1: all of them)."""
    kept_through = 0
    for session in sessions:
        if session.store_context:
            if session.kept_through is None:  # closed by an older build: it kept everything
                return -1
            kept_through = max(kept_through, session.kept_through)
    return kept_through


async def _forget_lines(ctx: Ctx, task_id: str, sessions: list[Session], *,
                        before: int | None = None) -> None:
    kept_through = _kept_through(sessions)
    if kept_through >= 0:
        await ctx.uow.messages.forget(task_id, kept_through, before)


async def owed_to_chatroom(ctx: Ctx, task_id: str, sessions: list[Session]) -> int | None:
    """The first customer line written while an agent's chat was live that its chatroom has
    not been shown yet (the relay goes on after terminate, e.g. after a Teams outage): lines
    from it on stay until relayed (`forget_relayed`)."""
    owed: int | None = None
    for session in sessions:
        if not session.chat_id or not session.header_posted or session.terminated_at is None:
            continue
        for message in await ctx.uow.messages.after(task_id, session.relayed_seq, RELAY_BATCH):
            if (message.sender is Sender.CUSTOMER and message.kind is Kind.MESSAGE
                    and message.at <= session.terminated_at):
                owed = message.seq if owed is None else min(owed, message.seq)
                break
    return owed


async def forget_relayed(ctx: Ctx, task_id: str) -> None:
    """The relay caught up with a concluded task: the lines it still owed go now, as they
    would have at the conclusion (the purge timer stays the backstop)."""
    task = await ctx.uow.tasks.get(task_id)
    if task is None or not task.state.finished:  # in wrap-up: the conclusion decides
        return
    sessions = await ctx.uow.sessions.for_task(task_id)
    await _forget_lines(ctx, task_id, sessions, before=await owed_to_chatroom(
        ctx, task_id, sessions))


async def purge(ctx: Ctx, task_id: str) -> None:
    """Retention reached: no session, chat line or task content of the task remains."""
    for session in await ctx.uow.sessions.for_task(task_id):
        if session.customer is not None:
            await strip_session(ctx, session.id)
    await ctx.uow.messages.forget(task_id, 0)
    task = await ctx.uow.tasks.get(task_id)
    if task is not None and task.content:
        task.content = {}
        await ctx.uow.tasks.save(task)


async def strip_session(ctx: Ctx, session_id: str) -> None:
    """The session's card and My Sessions entry show "Not available" from now on."""
    session = await ctx.uow.sessions.get(session_id)
    if session is None:
        return
    session.customer = None
    session.customer_label = None
    session.subject = ""
    await ctx.save_session(session)  # the card shows "Not available" too
