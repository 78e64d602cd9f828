"""External tasks from automations: create under a fair-use cap, look up, cancel before Accept."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.customer import Customer
from bot.domain.errors import Invalid, NotFound, Refused
from bot.domain.service import Modality
from bot.domain.task import Task
from bot.services import lifecycle
from bot.services.context import Ctx
from bot.services.dispatch import create_task

EXTERNAL = "external"  # Task.channel["kind"] of tasks created through the task API
RETRY_AFTER_FULL = 60  # seconds a client waits when a service has too many open tasks


class TooManyOpen(Refused):
    """The service has as many open external tasks as its fair-use cap allows."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="too_many", retry_after=RETRY_AFTER_FULL)


@dataclass(frozen=True)
class ExternalRequest:
    title: str
    description: str = ""
    due: datetime | None = None
    link: str = ""
    customer: Customer = field(default_factory=Customer)
    priority: int | None = None


@dataclass(frozen=True)
class Created:
    task: Task
    replayed: bool  # an earlier request with the same idempotency key created the task


@dataclass(frozen=True)
class ExternalStatus:
    task: Task
    completed_at: datetime | None  # when the agent completed it (terminated the session)


async def open_external_tasks(ctx: Ctx, service_id: str) -> int:
    return sum(1 for task in await ctx.uow.tasks.live()
               if task.service_id == service_id and task.modality is Modality.EXTERNAL
               and task.state.live)


def idempotent_task_id(key_name: str, idempotency_key: str) -> str:
    """The id of the task that requests with this idempotency key create: the same for every
    retry, another for another API key. Hashed: the key itself is stored nowhere."""
    digest = hashlib.sha256(f"{key_name}\0{idempotency_key}".encode()).hexdigest()
    return digest[:32]  # as long as new_id()'s


async def create_external_task(ctx: Ctx, service_id: str, request: ExternalRequest, *,
                               key_name: str = "",
                               idempotency_key: str | None = None) -> Created:
    """Queue an external task; past the service's cap of open external tasks, refuse. With an
    idempotency key, a retry of a request that created its task gets that task back (whatever
    else the retry says), and only one task is created however many run at once: the second
    insert of the same id conflicts, and the engine's retry finds the first."""
    task_id = None
    if idempotency_key is not None:
        task_id = idempotent_task_id(key_name, idempotency_key)
        earlier = await ctx.uow.tasks.get(task_id)
        if earlier is not None:
            if earlier.call_flow[:1] != [service_id]:  # where it began, before any transfer
                raise Invalid("This Idempotency-Key created a task in another service; use a "
                              "new key for a new task.", field="service")
            return Created(earlier, replayed=True)
    service = ctx.service(service_id)
    if Modality.EXTERNAL not in service.modalities:
        raise Invalid(f"{service.name} does not take external tasks.", field="service")
    cap = service.external.max_open
    if cap and await open_external_tasks(ctx, service_id) >= cap:
        raise TooManyOpen(f"{service.name} already has {cap} open external tasks; retry "
                          "when some are done.")
    task = await create_task(
        ctx, service_id, Modality.EXTERNAL, customer=request.customer,
        content={"title": request.title, "description": request.description,
                 "due": request.due.isoformat() if request.due else "", "link": request.link},
        priority=request.priority, channel={"kind": EXTERNAL, "api_key": key_name},
        task_id=task_id)
    return Created(task, replayed=False)


async def external_task(ctx: Ctx, task_id: str, services: Collection[str]) -> ExternalStatus:
    """An external task of one of `services`; NotFound for any other task id."""
    task = await ctx.uow.tasks.get(task_id)
    if task is None or task.channel.get("kind") != EXTERNAL:
        raise NotFound("There is no such task.")
    # The key that created a task keeps seeing it after a transfer.
    if not {task.service_id, *task.call_flow[:1]} & set(services):
        raise Refused("This API key may not use tasks of this service.", code="forbidden")
    completed_at = None
    if task.session_id is not None:
        session = await ctx.uow.sessions.get(task.session_id)
        completed_at = session.terminated_at if session is not None else None
    return ExternalStatus(task, completed_at)


async def cancel_external_task(ctx: Ctx, task_id: str, services: Collection[str]) -> Task:
    """Withdraw a task nobody accepted yet; cancelling a cancelled task changes nothing."""
    task = (await external_task(ctx, task_id, services)).task
    return await lifecycle.withdraw(ctx, task, by="requester", verb="cancelled")
