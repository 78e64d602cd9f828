"""The conversation of a task: customer and agent messages, and the relay into the chatroom."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from bot.domain.errors import Invalid, Refused, Stale
from bot.domain.message import ChatMessage, LinePace, Sender
from bot.domain.session import Phase, Session
from bot.domain.task import Task, TaskState
from bot.domain.timers import IDLE_TIMEOUT, RELAY, RING_TIMEOUT
from bot.services import lifecycle, privacy
from bot.services.context import Ctx

MAX_MESSAGE_LENGTH = 4000


def _checked(text: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise Invalid("A message needs some text.", field="text")
    if len(cleaned) > MAX_MESSAGE_LENGTH:
        raise Invalid(f"A message can be at most {MAX_MESSAGE_LENGTH} characters.", field="text")
    return cleaned


async def customer_message(ctx: Ctx, task_id: str, text: str, *,
                           pace: LinePace | None = None) -> ChatMessage:
    """A customer wrote: keep it in the transcript and relay it once an agent has the chat.
    `pace`: refuse a line past it, counted in the store (so for every instance alike)."""
    task = await ctx.task(task_id)
    if not task.state.live:
        raise Stale("This conversation has ended.")
    if pace is not None:
        newest = await ctx.uow.messages.sent_at(task.id, Sender.CUSTOMER, pace.lines)
        wait = pace.wait(newest, ctx.now)
        if wait is not None:
            raise Refused("Too many messages; slow down.", code="too_many",
                          retry_after=max(1, math.ceil(wait.total_seconds())))
    message = ChatMessage(task_id=task.id, sender=Sender.CUSTOMER, text=_checked(text),
                          at=ctx.now)
    await ctx.uow.messages.append(message)
    ctx.touched.add(task.id)
    if task.state is TaskState.CONNECTED and task.session_id:
        await ctx.arm(RELAY, task.session_id, ctx.now)
    await arm_idle_timeout(ctx, task)
    return message


async def arm_idle_timeout(ctx: Ctx, task: Task) -> None:
    idle = ctx.service(task.service_id).interact.idle_timeout
    if task.channel.get("kind") == "interact" and idle > timedelta(0):
        await ctx.arm(IDLE_TIMEOUT, task.id, ctx.now + idle)


async def idle_timeout(ctx: Ctx, task_id: str) -> None:
    """The customer said nothing for the idle time: the chat ends, by the system."""
    task = await ctx.uow.tasks.get(task_id)
    if task is None or not task.state.live:
        return
    await lifecycle.cancel_task(ctx, task_id, by="system")


async def agent_message(ctx: Ctx, session_id: str, agent_id: str, text: str) -> ChatMessage:
    session = await ctx.uow.sessions.get(session_id)
    if session is None or session.agent_id != agent_id:
        raise Refused("This chat is not yours.", code="forbidden")
    if session.phase is not Phase.CONNECTED:
        raise Stale("This conversation has ended.")
    message = ChatMessage(task_id=session.task_id, sender=Sender.AGENT, text=_checked(text),
                          at=ctx.now, agent_id=agent_id)
    await ctx.uow.messages.append(message)
    ctx.touched.add(session.task_id)
    return message


async def transcript(ctx: Ctx, task_id: str, limit: int = 200) -> list[ChatMessage]:
    return await ctx.uow.messages.after(task_id, 0, limit)


def relay_from(session: Session) -> int:
    """The sequence number after which the chatroom has seen nothing: until the header went out
    (it shows the transcript), the whole conversation."""
    return session.relayed_seq if session.header_posted else 0


@dataclass(frozen=True)
class RelayStep:
    """What the chatroom gets next: the header card with the transcript `messages` (once,
    before anything else), or else the customer's `messages` relayed one by one."""

    header: bool
    messages: list[ChatMessage]

    @property
    def through(self) -> int:
        """The sequence number the chatroom has seen once this step is done."""
        return self.messages[-1].seq if self.messages else 0


def relay_step(session: Session, messages: list[ChatMessage]) -> RelayStep | None:
    """The relay rules for the conversation's rows after `relay_from(session)`: header first;
    once the session ended only what was written up to Terminate, and only into a chatroom
    that has its header; the agent's own lines never (they are in the chatroom already).
    None: nothing to send."""
    if session.phase is not Phase.CONNECTED:
        cutoff = session.terminated_at
        messages = [m for m in messages if cutoff is not None and m.at <= cutoff]
        if not session.header_posted or not messages:
            return None
    if not session.header_posted:
        return RelayStep(header=True, messages=messages)
    return RelayStep(header=False,
                     messages=[m for m in messages if m.sender is Sender.CUSTOMER])


async def header_posted(ctx: Ctx, session_id: str, seq: int) -> None:
    """The chatroom got its header with the transcript up to `seq`; relay what came after."""
    session = await ctx.uow.sessions.get(session_id)
    if session is None or session.header_posted:
        return
    session.header_in_chat(seq)
    await ctx.uow.sessions.save(session)
    if await ctx.uow.messages.after(session.task_id, session.relayed_seq, 1):
        await ctx.arm(RELAY, session.id, ctx.now)


async def card_posted(ctx: Ctx, session_id: str, card_id: str) -> None:
    """Remember the agent's card so every later outcome updates it in place; an offer that
    waited for its card starts ringing now (the card says "Rings for <ring timeout>")."""
    session = await ctx.uow.sessions.get(session_id)
    if session is None:
        return
    changed = session.card_id != card_id
    session.card_id = card_id
    if session.awaits_card:
        session.card_delivered(ctx.now)
        await ctx.arm(RING_TIMEOUT, session.id, session.ring_until)
        changed = True
    if changed:
        await ctx.uow.sessions.save(session)


async def relayed(ctx: Ctx, session_id: str, seq: int) -> None:
    """Move the relay cursor; saved without touching the card (nothing on it changed). After
    terminate, the lines a concluded task kept only for the chatroom go once it has them."""
    session = await ctx.uow.sessions.get(session_id)
    if session is not None and session.relayed_through(seq):
        await ctx.uow.sessions.save(session)
        if session.phase is not Phase.CONNECTED:
            await privacy.forget_relayed(ctx, session.task_id)
