"""The use-case side of web requests: queue them with the event, record how delivery went.

No HTTP here (`sender` does that). `on_event` runs inside the unit of work of every event: for
each of the service's templates on that moment it renders the request from the task, session
and customer context as they are right then and appends it to the task's outbox, so the request
commits (or not) with the change that caused it. It then arms the task's job `webhook:<task>`,
which delivers the task's requests one at a time, oldest first.

Customer context: rendered from the task while it still has it, else from what the session kept
(a service that opted in to storing context), else empty. A request queued before the task
concluded keeps the values it was rendered with; a request queued after (a wrap-up saved once
the context was removed) renders the customer placeholders empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.domain import events as ev
from bot.domain.events import Event
from bot.domain.ids import new_id
from bot.domain.retry import Backoff
from bot.domain.session import Session
from bot.domain.task import Task
from bot.domain.timers import timer_id
from bot.domain.webhooks.model import MAX_ATTEMPTS, WEBHOOK, Delivery, Trigger
from bot.domain.webhooks.template import render, values_for
from bot.services import privacy
from bot.services.context import Ctx

TRIGGERS: dict[str, Trigger] = {
    ev.OFFER_CREATED: Trigger.RINGING,
    ev.OFFER_ACCEPTED: Trigger.ACCEPTED,
    ev.SESSION_TERMINATED: Trigger.TERMINATED,
    ev.SESSION_SAVED: Trigger.CONCLUDED,
}

# After attempt n (1-4): 10 s, 40 s, 160 s, 640 s, each jittered down by up to 25 %.
BACKOFF = Backoff(first=10.0, factor=4.0, jitter=(0.75, 1.0))
MAX_RETRY_AFTER = 15 * 60.0  # seconds: a receiver's Retry-After is honoured up to this


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """The wait after `attempts` failed attempts, at least the receiver's Retry-After."""
    delay = BACKOFF.wait(attempts)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return timedelta(seconds=delay)


async def on_event(ctx: Ctx, event: Event, task: Task | None, session: Session | None) -> None:
    """The Engine's event hook: queue the requests of the templates on this moment."""
    trigger = TRIGGERS.get(event.name)
    if trigger is None or event.task_id is None:
        return
    # The session's service: a transfer ends the session after the task moved on.
    service_id = session.service_id if session is not None else event.service_id
    service = ctx.catalog.services.get(service_id or "")
    if service is None:
        return
    templates = [(i, t) for i, t in enumerate(service.web_requests) if t.on is trigger]
    if not templates:
        return
    if task is None:
        task = await ctx.uow.tasks.get(event.task_id)
        if task is None:
            return
    agent = await ctx.uow.agents.get(session.agent_id) if session is not None else None
    customer = task.customer
    if customer.is_empty() and session is not None and session.customer is not None:
        customer = session.customer
    for index, template in templates:
        key = new_id()
        values = values_for(task=task, service=service, session=session, agent=agent,
                            customer=customer, trigger=trigger, at=ctx.now, key=key)
        request = render(template, values, customer.params)
        await ctx.uow.outbox.append(Delivery(
            task_id=task.id, key=key, service_id=service.id, template=index, trigger=trigger,
            method=request.method, url=request.url, headers=request.headers,
            body=request.body, timeout=template.timeout.total_seconds(),
            signed=bool(template.secret), created_at=ctx.now,
            session_id=session.id if session is not None else None))
    await wake(ctx, task.id, ctx.now)


async def wake(ctx: Ctx, task_id: str, due: datetime) -> None:
    """Arm the task's job for `due`, never earlier than a backoff it is already waiting out.

    Arming bumps the job's version, so a run in progress that saw no more work releases the
    job instead of deleting it, and the job runs again for what was just queued.
    """
    current = await ctx.uow.timers.get(timer_id(WEBHOOK, task_id))
    if current is not None and current.due_at > due:
        due = current.due_at
    await ctx.arm(WEBHOOK, task_id, due)


async def head(ctx: Ctx, task_id: str) -> Delivery | None:
    """The task's oldest pending delivery: the only one that may go now."""
    found = await ctx.uow.outbox.pending(task_id, 1)
    return found[0] if found else None


async def _current(ctx: Ctx, sent: Delivery) -> Delivery | None:
    found = await head(ctx, sent.task_id)
    return found if found is not None and found.key == sent.key else None


@dataclass(frozen=True)
class Outcome:
    """How one attempt went, as the sender saw it: no URL, header or body in here."""

    status: int  # HTTP status; 0 = no response (refused, reset, timed out)
    error: str = ""  # the exception's class name when there was no response
    retry_after: float | None = None  # seconds, from the receiver's Retry-After
    permanent: bool = False  # retrying cannot help (a 4xx other than 408/425/429, a 3xx)
    # Parameters the answer filled (the template's response mapping); never logged.
    params: dict[str, str] = field(default_factory=dict, repr=False)


def _outcome_data(delivery: Delivery, outcome: Outcome) -> dict[str, Any]:
    data: dict[str, Any] = {
        "template": delivery.template, "template_service": delivery.service_id,
        "on": delivery.trigger.value, "status": outcome.status,
        "attempts": delivery.attempts, "key": delivery.key}
    if outcome.error:
        data["error"] = outcome.error
    return data


async def _emit(ctx: Ctx, name: str, delivery: Delivery, outcome: Outcome) -> Task | None:
    """The delivery's event; the task it is about (None: gone)."""
    task = await ctx.uow.tasks.get(delivery.task_id)
    session = await ctx.uow.sessions.get(delivery.session_id) if delivery.session_id else None
    if task is None:
        return None
    await ctx.emit(name, task=task, session=session, **_outcome_data(delivery, outcome))
    return task


async def delivered(ctx: Ctx, sent: Delivery, outcome: Outcome) -> bool:
    """A 2xx: the delivery is done and leaves the outbox; the next one may go at once."""
    current = await _current(ctx, sent)
    if current is None:
        return False  # recorded elsewhere already (another instance after a lost lease)
    current.attempts += 1
    current.last_status = outcome.status
    await ctx.uow.outbox.delete(current)
    task = await _emit(ctx, ev.WEBHOOK_DELIVERED, current, outcome)
    # A live task takes the parameters the answer filled; later the context is closed.
    if outcome.params and task is not None and task.state.live:
        await privacy.set_context(ctx, task.id, params=outcome.params, source="web_request")
    await _next(ctx, sent.task_id)
    return True


async def attempt_failed(ctx: Ctx, sent: Delivery, outcome: Outcome) -> bool:
    """A failed attempt. Returns True when the delivery was given up on (recorded failed).

    Retried with backoff up to MAX_ATTEMPTS attempts, later deliveries of the task waiting
    behind it; after the last attempt, or at once when retrying cannot help, it is recorded
    failed (`webhook.failed`, ids and status only), leaves the outbox, and the next one goes.
    """
    current = await _current(ctx, sent)
    if current is None:
        return False
    current.attempts += 1
    current.last_status = outcome.status
    if outcome.permanent or current.attempts >= MAX_ATTEMPTS:
        await ctx.uow.outbox.delete(current)
        await _emit(ctx, ev.WEBHOOK_FAILED, current, outcome)
        await _next(ctx, sent.task_id)
        return True
    current.not_before = ctx.now + backoff(current.attempts, outcome.retry_after)
    await ctx.uow.outbox.save(current)
    await ctx.arm(WEBHOOK, sent.task_id, current.not_before)
    return False


async def not_yet(ctx: Ctx, task_id: str, until: datetime) -> None:
    """The job ran before the head's backoff was over: sleep until then."""
    await ctx.arm(WEBHOOK, task_id, until)


async def _next(ctx: Ctx, task_id: str) -> None:
    following = await head(ctx, task_id)
    if following is not None:
        await ctx.arm(WEBHOOK, task_id, max(ctx.now, following.not_before or ctx.now))


def customer_free(delivery: Delivery) -> dict[str, object]:
    """What a log line may say about a delivery: ids, no URL, headers or body."""
    return {"task": delivery.task_id, "service": delivery.service_id,
            "template": delivery.template, "on": delivery.trigger.value,
            "method": delivery.method, "attempt": delivery.attempts + 1}

