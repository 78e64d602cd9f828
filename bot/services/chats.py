"""Website chats (Interact): open a chat as an IM task, and read its event stream."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from bot.domain.customer import Customer
from bot.domain.errors import NotFound, Refused
from bot.domain.message import ChatMessage
from bot.domain.service import Modality
from bot.domain.task import Task, TaskState
from bot.services.context import Ctx
from bot.services.conversation import arm_idle_timeout, customer_message
from bot.services.dispatch import create_task

INTERACT = "interact"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class OpenedChat:
    task: Task
    position: int


async def open_chat(ctx: Ctx, service_id: str, customer: Customer, text: str,
                    token: str, origin: str = "") -> OpenedChat:
    """Queue a website chat; only a hash of its bearer token is stored."""
    service = ctx.service(service_id)
    if Modality.IM not in service.modalities:
        raise Refused(f"{service.name} does not take website chats.", code="invalid")
    task = await create_task(ctx, service_id, Modality.IM, customer=customer,
                             content={"text": text.strip()},
                             channel={"kind": INTERACT, "token_sha256": token_hash(token),
                                      "origin": origin})
    if text.strip():
        await customer_message(ctx, task.id, text)
    else:
        await arm_idle_timeout(ctx, task)
    return OpenedChat(task, await position(ctx, task))


async def position(ctx: Ctx, task: Task) -> int:
    """1 for the next in line; 0 once ringing or connected."""
    if task.state is not TaskState.QUEUED:
        return 0
    return await ctx.uow.tasks.position(task)


async def authorized_chat(ctx: Ctx, chat_id: str, token: str) -> Task:
    task = await ctx.uow.tasks.get(chat_id)
    if task is None or task.channel.get("kind") != INTERACT:
        raise NotFound("There is no such chat.")
    expected = str(task.channel.get("token_sha256", ""))
    if not token or not hmac.compare_digest(expected, token_hash(token)):
        raise Refused("The chat token is missing or wrong.", code="unauthorized")
    return task


@dataclass(frozen=True)
class ChatView:
    task: Task
    rows: list[ChatMessage]
    position: int


async def chat_events(ctx: Ctx, chat_id: str, token: str, after: int,
                      limit: int = 200) -> ChatView:
    task = await authorized_chat(ctx, chat_id, token)
    rows = await ctx.uow.messages.after(task.id, after, limit)
    return ChatView(task, rows, await position(ctx, task))
