"""What the agent's desk and the card jobs read: the reads of one screen in one unit of work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.domain.agent import Agent
from bot.domain.message import RELAY_BATCH, ChatMessage
from bot.domain.session import Phase, Session
from bot.domain.task import Task
from bot.services.context import Ctx
from bot.services.ports import SessionSearch

SUGGESTIONS = 15  # tags offered with nothing typed (Teams shows at most 15)
RECENT = 50  # sessions the status card looks through for open ones

Suggests = Callable[[Session, Task | None], bool]
"""Whether the card drawn for a session offers tags (so its suggestions are worth a read)."""


@dataclass
class SessionBundle:
    session: Session | None
    task: Task | None
    agent: Agent | None
    suggestions: tuple[str, ...] = ()


async def load_bundle(ctx: Ctx, session_id: str, *,
                      suggest: Suggests | None = None) -> SessionBundle:
    """The session with its task and agent, and the service's tag suggestions when `suggest`
    says the card drawn from them offers tags."""
    session = await ctx.uow.sessions.get(session_id)
    if session is None:
        return SessionBundle(None, None, None)
    task = await ctx.uow.tasks.get(session.task_id)
    agent = await ctx.uow.agents.get(session.agent_id)
    suggestions: tuple[str, ...] = ()
    if suggest is not None and suggest(session, task):
        suggestions = tuple(await ctx.uow.tags.suggest(session.service_id, "", SUGGESTIONS))
    return SessionBundle(session, task, agent, suggestions)


def header_due(session: Session, task: Task | None) -> bool:
    """The chatroom's header (with its codes and tags form) is still to be posted."""
    return not session.header_posted


@dataclass(frozen=True)
class ChatroomBundle:
    session: Session | None
    transcript: list[ChatMessage]
    """The lines the header card was posted with."""
    suggestions: tuple[str, ...] = ()


async def chatroom(ctx: Ctx, session_id: str) -> ChatroomBundle:
    """What the chatroom's header card is drawn from."""
    session = await ctx.uow.sessions.get(session_id)
    if session is None or not session.header_posted:
        return ChatroomBundle(session, [])
    lines = await ctx.uow.messages.after(session.task_id, 0, RELAY_BATCH)
    suggestions: tuple[str, ...] = ()
    if session.saved_at is None:
        suggestions = tuple(await ctx.uow.tags.suggest(session.service_id, "", SUGGESTIONS))
    return ChatroomBundle(session, [m for m in lines if m.seq <= session.header_seq],
                          suggestions)


async def acted(ctx: Ctx, use_case: Callable[..., Awaitable[Session]], /, *args: Any,
                suggest: Suggests | None = None, answering: str | None = None,
                **kwargs: Any) -> SessionBundle:
    """Run a card action's use case, then read its card's bundle in the same unit of work
    (mostly from what the use case already loaded) rather than in another one after it.
    `answering`: the card clicked, which the action's answer redraws (Ctx.answering_card)."""
    ctx.answering_card = answering
    session = await use_case(ctx, *args, **kwargs)
    return await load_bundle(ctx, session.id, suggest=suggest)


async def agent(ctx: Ctx, agent_id: str) -> Agent | None:
    return await ctx.uow.agents.get(agent_id)


async def registered(ctx: Ctx, agent_id: str) -> bool:
    found = await ctx.uow.agents.get(agent_id)
    return found is not None and found.registered


async def agent_with_open_sessions(ctx: Ctx, agent_id: str,
                                   ) -> tuple[Agent | None, list[Session]]:
    """The agent and its sessions still ringing, connected or in after-call work."""
    found = await ctx.uow.agents.get(agent_id)
    recent = await ctx.uow.sessions.for_agent(agent_id, RECENT)
    return found, [s for s in recent if s.live or s.phase is Phase.ACW]


async def sessions_page(ctx: Ctx, agent_id: str, limit: int, offset: int,
                        search: SessionSearch) -> list[Session]:
    """My Sessions: the agent's sessions matching `search`, newest first."""
    return await ctx.uow.sessions.for_agent(agent_id, limit, offset, search)


async def session_in_chat(ctx: Ctx, conversation_id: str) -> Session | None:
    """The session whose chatroom this conversation is (the live one, else the latest)."""
    return await ctx.uow.sessions.by_chat(conversation_id)


async def tag_suggestions(ctx: Ctx, agent_id: str, card_id: str | None, text: str,
                          limit: int) -> list[str]:
    """Tags used before in the service of the card being filled in (else in the agent's
    services), matching what was typed."""
    session = await ctx.uow.sessions.by_card(card_id) if card_id else None
    if session is not None:
        service_ids = [session.service_id]
    else:
        found = await ctx.uow.agents.get(agent_id)
        service_ids = list(found.services) if found else []
    tags: list[str] = []
    for service_id in service_ids:
        tags += await ctx.uow.tags.suggest(service_id, text.strip(), limit)
    return list(dict.fromkeys(tags))[:limit]


async def agent_by_identity(ctx: Ctx, upn: str | None, object_id: str | None) -> Agent | None:
    """The registered agent a signed-in user is (by UPN or Entra object id, as the services
    file lists members), looked for among the members of the services that list them."""
    wanted = {value.lower() for value in (upn, object_id) if value}
    for service_id in ctx.catalog.memberships(upn, object_id):
        for member in await ctx.uow.agents.members(service_id):
            if wanted & {value.lower() for value in (member.upn, member.object_id) if value}:
                return member
    return None
