"""Customer context over a task's life: kept while live, stored per opted-in hop, then purged.

- While a task is live its context (name, email, phone, parameters) is on the task and its
  sessions. Parameters accumulate over transfers: a later service may add or overwrite values.
- When a hop ends (a transfer away, or the task concluding) the sessions of that hop keep a
  snapshot of the live context and remember whether their service opted in then
  ("store conversation context data"): turning the option on later changes nothing.
- When the task concludes, every session whose service did not opt in loses its context; the
  others keep theirs until RETENTION after the end, when a durable timer removes it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.domain.customer import Customer
from bot.domain.errors import Invalid, Stale
from bot.domain.task import Task
from bot.domain.timers import CONTEXT_PURGE, SYNC_CARD
from bot.services.context import Ctx

RETENTION = timedelta(days=30)
MAX_PARAMS = 50


async def set_params(ctx: Ctx, task_id: str, params: dict[str, str]) -> Task:
    """Add or overwrite custom parameters of a live task (later values win)."""
    task = await ctx.task(task_id)
    if not task.state.live:
        raise Stale("The task has ended; its context can no longer change.")
    merged = {**task.customer.params, **{str(k): str(v) for k, v in params.items()}}
    if len(merged) > MAX_PARAMS:
        raise Invalid(f"A task can carry at most {MAX_PARAMS} parameters.", field="params")
    task.customer = replace(task.customer, params=merged)
    await ctx.uow.tasks.save(task)
    return task


async def close_hop(ctx: Ctx, task: Task, service_id: str) -> None:
    """The task leaves `service_id`: its sessions there keep the live context as it is now."""
    opted_in = ctx.service(service_id).context.store_data
    for session in await ctx.uow.sessions.for_task(task.id):
        if session.service_id != service_id or session.store_context is not None:
            continue
        session.customer = replace(task.customer, params=dict(task.customer.params))
        session.customer_label = task.customer_label
        session.store_context = opted_in
        await ctx.uow.sessions.save(session)


async def conclude(ctx: Ctx, task: Task) -> None:
    """The task is over: remove context everywhere it was not opted in to be stored."""
    await close_hop(ctx, task, task.service_id)
    kept = False
    for session in await ctx.uow.sessions.for_task(task.id):
        if session.store_context:
            kept = True
        elif session.customer is not None:
            await _strip(ctx, session.id)
    task.customer = Customer()
    task.customer_label = ""
    # The content (first message, email body and addresses, task description) is customer
    # data too; the channel keeps only what identifies the chat, not who wrote it.
    task.content = {}
    task.channel = {k: v for k, v in task.channel.items() if k in ("kind", "token_sha256")}
    await ctx.uow.tasks.save(task)
    if kept:
        await ctx.arm(CONTEXT_PURGE, task.id, ctx.now + RETENTION)


async def purge(ctx: Ctx, task_id: str) -> None:
    """Retention reached: no session of the task keeps customer context any longer."""
    for session in await ctx.uow.sessions.for_task(task_id):
        if session.customer is not None:
            await _strip(ctx, session.id)


async def _strip(ctx: Ctx, session_id: str) -> None:
    session = await ctx.uow.sessions.get(session_id)
    if session is None:
        return
    session.customer = None
    session.customer_label = None
    session.subject = ""
    await ctx.uow.sessions.save(session)
    await ctx.arm(SYNC_CARD, session.id, ctx.now)  # the card shows "Not available" too
