"""Email tasks: a received message becomes a task (automatic mail is recorded), replies, done."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain import mail as m
from bot.domain.customer import Customer
from bot.domain.errors import Invalid, Refused
from bot.domain.events import Event
from bot.domain.ids import new_id
from bot.domain.service import Modality
from bot.domain.session import Session
from bot.domain.task import Task
from bot.services import lifecycle
from bot.services.context import Ctx
from bot.services.dispatch import create_task

EMAIL = "email"  # Task.channel["kind"] of email tasks
SEND_REPLY = "send_reply"  # effect job: one reply leaves through the SMTP relay
MAX_REPLY_LENGTH = 10_000
MAX_QUOTE = 4_000


@dataclass(frozen=True)
class Received:
    task_ids: tuple[str, ...] = ()
    automatic: str | None = None  # why no task was created


async def receive_mail(ctx: Ctx, mail: m.InboundMail,
                       recipients: Sequence[tuple[str, str]]) -> Received:
    """Queue the message in each (service id, address) it was sent to, or record automatic mail.

    A message with a Message-ID that a service already has is not queued again: a sender that
    retries after losing our answer gets one task."""
    ours = {s.email.lower() for s in ctx.catalog.services.values() if s.email}
    automatic = mail.automatic or ("loop" if mail.sender.lower() in ours else None)
    if automatic:
        for service_id, _ in recipients:
            await ctx.uow.events.append(Event(name=m.EMAIL_FAILED, at=ctx.now,
                                              service_id=service_id,
                                              data={"reason": automatic}))
        return Received(automatic=automatic)
    others = m.others(mail.to, mail.cc, exclude={*ours, mail.sender, *mail.reply_to})
    created: list[str] = []
    for service_id, address in recipients:
        task_id = m.task_id_for(service_id, mail.message_id)
        if task_id is not None and await ctx.uow.tasks.get(task_id) is not None:
            created.append(task_id)
            continue
        task = await create_task(
            ctx, service_id, Modality.EMAIL,
            customer=Customer(name=mail.sender_name or mail.sender, email=mail.sender),
            content={
                "sender": mail.sender_label,
                "subject": mail.subject,
                "preview": m.preview(mail.text),
                "text": mail.text,
                "html": mail.html,
                "attachments": [a.label() for a in mail.attachments],
                "others": list(others),
                "truncated": mail.truncated,
            },
            task_id=task_id,
            channel={
                "kind": EMAIL,
                "address": address,
                "from": mail.sender,
                "reply_to": list(mail.reply_to),
                "message_id": mail.message_id,
                "references": list(mail.references),
            })
        created.append(task.id)
    return Received(task_ids=tuple(created))


async def _email_session(ctx: Ctx, session_id: str, agent_id: str) -> tuple[Session, Task]:
    session = await lifecycle.connected_session(ctx, session_id, agent_id)
    task = await ctx.task(session.task_id)
    if task.channel.get("kind") != EMAIL:
        raise Refused("This session is not an email.")
    return session, task


async def reply(ctx: Ctx, session_id: str, agent_id: str, text: str, *,
                reply_all: bool = False) -> Session:
    """Queue the agent's reply for the relay (threaded to the message) and end the session."""
    session, task = await _email_session(ctx, session_id, agent_id)
    body = text.strip()
    if not body:
        raise Invalid("Write your reply first.", field="reply_text")
    if len(body) > MAX_REPLY_LENGTH:
        raise Invalid(f"A reply can be at most {MAX_REPLY_LENGTH} characters.",
                      field="reply_text")
    channel, content = task.channel, task.content
    to = [str(a) for a in channel.get("reply_to") or []] or \
        ([str(channel["from"])] if channel.get("from") else [])
    if not to:
        raise Refused("This email has no sender address to reply to.")
    cc = [str(a) for a in content.get("others", [])] if reply_all else []
    service = ctx.service(task.service_id)
    address = service.email or str(channel.get("address", ""))
    domain = address.rpartition("@")[2] or "switchboard.invalid"
    original = str(channel.get("message_id", ""))
    outgoing: dict[str, Any] = {
        "from_name": service.name,
        "sender": address,
        "to": to,
        "cc": cc,
        "subject": m.reply_subject(str(content.get("subject", ""))),
        "message_id": f"<{new_id()}@{domain}>",
        "in_reply_to": original,
        "references": list(m.references([str(r) for r in channel.get("references", [])],
                                         original)),
        "date": ctx.now.isoformat(),
        "body": body + _quote(task.created_at, str(content.get("sender", "")),
                              str(content.get("text", ""))),
        "task_id": task.id,
        "session_id": session.id,
        "service_id": task.service_id,
    }
    await ctx.arm(SEND_REPLY, new_id(), ctx.now, mail=outgoing)
    await ctx.emit(m.EMAIL_REPLY_QUEUED, task=task, session=session, reply_all=reply_all,
                   recipients=len(to) + len(cc))
    return await lifecycle.terminate(ctx, session.id, by="agent", agent_id=agent_id)


def _quote(received: datetime, sender: str, text: str) -> str:
    if not text.strip():
        return ""
    quoted = text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE].rstrip() + "\n[…]"
    lines = "\n".join(f"> {line}" if line else ">" for line in quoted.splitlines())
    return f"\n\nOn {received:%Y-%m-%d %H:%M} UTC, {sender} wrote:\n{lines}\n"


async def mark_handled(ctx: Ctx, session_id: str, agent_id: str) -> Session:
    """The email needs no (further) answer from here: the session ends, ACW follows."""
    session, _ = await _email_session(ctx, session_id, agent_id)
    return await lifecycle.terminate(ctx, session.id, by="agent", agent_id=agent_id)


async def reply_sent(ctx: Ctx, outgoing: dict[str, Any], refused: int) -> None:
    await _reply_event(ctx, m.EMAIL_REPLY_SENT, outgoing, refused=refused)


async def reply_failed(ctx: Ctx, outgoing: dict[str, Any], code: int) -> None:
    """The relay refused the reply for good (a 5xx answer): it is not tried again."""
    await _reply_event(ctx, m.EMAIL_REPLY_FAILED, outgoing, code=code)


async def _reply_event(ctx: Ctx, name: str, outgoing: dict[str, Any], **data: Any) -> None:
    await ctx.uow.events.append(Event(
        name=name, at=ctx.now, task_id=outgoing.get("task_id"),
        session_id=outgoing.get("session_id"), service_id=outgoing.get("service_id"),
        data=data))
