"""Wrap-up: codes and tags saved exactly once on a My Sessions entry, from Accept on."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain import events as ev
from bot.domain.session import Session
from bot.services.context import Ctx


async def save_wrapup(ctx: Ctx, session_id: str, agent_id: str, *, primary: str | None,
                      secondary: str | None, tags: Sequence[str]) -> Session:
    session = await ctx.own_session(session_id, agent_id)
    session.save_wrapup(ctx.now, ctx.service(session.service_id).codes, primary, secondary,
                        tags)
    await ctx.save_session(session)
    if session.tags:
        await ctx.uow.tags.record(session.service_id, session.tags, ctx.now)
    await ctx.emit(ev.SESSION_SAVED, session=session, primary_code=session.primary_code,
                   secondary_code=session.secondary_code, tags=session.tags)
    return session


async def suggest_tags(ctx: Ctx, service_id: str, text: str, limit: int = 15) -> list[str]:
    return await ctx.uow.tags.suggest(service_id, text.strip(), limit)
