"""A customer's requests under GDPR: erase everything about them (Art. 17), or see it (Art. 15).

A request names the customer by email, phone or name (`CustomerQuery`: any one matching is
enough). Tasks are found by their live customer, and by the snapshots their sessions keep; each
task is erased in a unit of work of its own, so a retry after a failure picks up what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain import events as ev
from bot.domain.customer import Customer
from bot.domain.message import Kind
from bot.domain.session import Session
from bot.domain.task import Task
from bot.domain.timers import CONTEXT_PURGE
from bot.services import lifecycle
from bot.services.context import Ctx
from bot.services.ports import CustomerQuery
from bot.services.privacy import CHANNEL_KEPT, strip_session

MAX_TASKS = 1_000  # one request finds at most this many tasks (run it again for more)
MAX_EXPORT_MESSAGES = 2_000  # lines of one task in an export


async def tasks_about(ctx: Ctx, who: CustomerQuery) -> list[str]:
    """Ids of the tasks that hold something about the customer, oldest first as found."""
    found: dict[str, None] = {}
    for task in await ctx.uow.tasks.about(who, MAX_TASKS):
        found[task.id] = None
    for session in await ctx.uow.sessions.about(who, MAX_TASKS):
        found[session.task_id] = None
    return list(found)[:MAX_TASKS]


async def erase_task(ctx: Ctx, task_id: str) -> int:
    """Remove the customer's data from one task, its sessions, chat lines and pending web
    requests; a live task ends first (its chat with a system message). Returns the lines gone."""
    task = await ctx.uow.tasks.get(task_id)
    if task is None:
        return 0
    if task.state.live:  # after-call work, if any, runs on without the customer's data
        await lifecycle.cancel_task(ctx, task.id, by="privacy")
    for session in await ctx.uow.sessions.for_task(task.id):
        if session.store_context is None:
            session.keep_record(False, 0)  # the hop's record: nothing to keep
            await ctx.uow.sessions.save(session)
        if session.customer is not None or session.customer_label:
            await strip_session(ctx, session.id)
    task.customer = Customer()
    task.customer_label = ""
    task.content = {}
    task.channel = {k: v for k, v in task.channel.items() if k in CHANNEL_KEPT}
    await ctx.uow.tasks.save(task)
    await ctx.cancel(CONTEXT_PURGE, task.id)
    for delivery in await ctx.uow.outbox.pending(task.id, 1_000):
        await ctx.uow.outbox.delete(delivery)
    return await ctx.uow.messages.forget(task.id, 0)


async def record_erasure(ctx: Ctx, tasks: int, messages: int) -> None:
    """The event says that an erasure ran and how much it removed, nothing about whom."""
    await ctx.emit(ev.PRIVACY_ERASED, tasks=tasks, messages=messages)


@dataclass(frozen=True)
class Export:
    tasks: list[dict[str, Any]]


def _time(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def _customer(customer: Customer | None) -> dict[str, Any] | None:
    if customer is None:
        return None
    return {"name": customer.name, "email": customer.email, "phone": customer.phone,
            "context": dict(customer.params), "verified": not customer.unverified}


def _session(session: Session) -> dict[str, Any]:
    return {"session_id": session.id, "service": session.service_id,
            "result": session.result.value if session.result else None,
            "offered_at": _time(session.offered_at), "connected_at": _time(session.connected_at),
            "ended_at": _time(session.terminated_at), "customer": _customer(session.customer),
            "customer_label": session.customer_label, "tags": list(session.tags),
            "primary_code": session.primary_code, "secondary_code": session.secondary_code}


async def export_task(ctx: Ctx, task: Task) -> dict[str, Any]:
    lines = await ctx.uow.messages.after(task.id, 0, MAX_EXPORT_MESSAGES)
    return {
        "task_id": task.id, "modality": task.modality.value, "state": task.state.value,
        "created_at": _time(task.created_at), "ended_at": _time(task.ended_at),
        "services": list(task.call_flow),
        "customer": _customer(task.customer) if not task.customer.is_empty() else None,
        "content": dict(task.content),
        "sessions": [_session(s) for s in await ctx.uow.sessions.for_task(task.id)],
        "messages": [{"seq": m.seq, "from": m.sender.value, "at": _time(m.at), "text": m.text}
                     for m in lines if m.kind is Kind.MESSAGE],
    }


async def export(ctx: Ctx, who: CustomerQuery) -> Export:
    """Everything still stored about the customer, task by task."""
    found = []
    for task_id in await tasks_about(ctx, who):
        task = await ctx.uow.tasks.get(task_id)
        if task is not None:
            found.append(await export_task(ctx, task))
    return Export(found)
