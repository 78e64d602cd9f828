"""Wrap-up: codes and tags saved exactly once on a My Sessions entry, from Accept on."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain import events as ev
from bot.domain.errors import Invalid, Refused
from bot.domain.session import Phase, Session
from bot.services.context import Ctx

MAX_TAGS = 20
MAX_TAG_LENGTH = 50


def clean_tags(tags: Sequence[str]) -> list[str]:
    """Trim, drop empties, keep the first spelling of each tag (case-insensitive)."""
    seen: dict[str, str] = {}
    for raw in tags:
        tag = " ".join(raw.split())
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise Invalid(f"A tag can be at most {MAX_TAG_LENGTH} characters.", field="tags")
        seen.setdefault(tag.lower(), tag)
    if len(seen) > MAX_TAGS:
        raise Invalid(f"At most {MAX_TAGS} tags per session.", field="tags")
    return list(seen.values())


async def save_wrapup(ctx: Ctx, session_id: str, agent_id: str, *, primary: str | None,
                      secondary: str | None, tags: Sequence[str]) -> Session:
    session = await ctx.own_session(session_id, agent_id)
    if session.saved_at is not None:
        raise Refused("The codes and tags of this session were already saved: a session is "
                      "saved once.", code="saved")
    if session.phase is Phase.RINGING:
        raise Refused("Accept the task before saving its codes and tags.")
    codes = ctx.service(session.service_id).codes
    primary = (primary or "").strip() or None
    secondary = (secondary or "").strip() or None
    if codes.required and primary is None:
        raise Invalid("Choose a primary code before saving.", field="primary_code")
    if primary is not None and primary not in codes.primary:
        raise Invalid(f"{primary!r} is not a primary code of this service.", field="primary_code")
    if secondary is not None and secondary not in codes.secondary:
        raise Invalid(f"{secondary!r} is not a secondary code of this service.",
                      field="secondary_code")
    session.primary_code = primary
    session.secondary_code = secondary
    session.tags = clean_tags(tags)
    session.saved_at = ctx.now
    await ctx.save_session(session)
    if session.tags:
        await ctx.uow.tags.record(session.service_id, session.tags, ctx.now)
    await ctx.emit(ev.SESSION_SAVED, session=session, primary_code=primary,
                   secondary_code=secondary, tags=session.tags)
    return session


async def suggest_tags(ctx: Ctx, service_id: str, text: str, limit: int = 15) -> list[str]:
    return await ctx.uow.tags.suggest(service_id, text.strip(), limit)
