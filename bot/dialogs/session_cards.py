"""The card that follows one session, chosen from its phase and result."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from bot import cards
from bot.cards import views as v
from bot.cards.budget import Card
from bot.dialogs import views
from bot.domain.agent import Agent
from bot.domain.service import Catalog
from bot.domain.session import CANCEL_NOTES, Phase, Session, SessionResult
from bot.domain.task import Task


def session_card(session: Session, task: Task | None, agent: Agent | None, catalog: Catalog,
                 now: datetime, *, suggestions: tuple[str, ...] = (),
                 error: str | None = None, wrapup: bool = False) -> Card:
    """What the agent's card shows now; `wrapup` asks for the form of a finished entry."""
    if shows_wrapup_form(session, task, wrapup=wrapup):
        return cards.wrapup_card(views.wrapup(session, catalog, suggestions=suggestions,
                                              error=error))
    if session.phase is Phase.CONNECTED:  # codes and tags can be saved from Accept on
        return cards.accepted_card(views.accepted(session, task, catalog, error=error,
                                                  suggestions=suggestions))
    if session.saved_at is not None:
        return cards.concluded_card(views.concluded(session, catalog, error=error))
    if session.phase is Phase.RINGING and task is not None:
        return cards.invitation_card(views.invitation(session, task, catalog, now))
    return outcome_card(session, agent, now)


def offers_tags(session: Session, task: Task | None, *, wrapup: bool = False) -> bool:
    """Whether the card `session_card` draws has the codes and tags form (and suggestions)."""
    return (session.phase is Phase.CONNECTED and session.saved_at is None) or shows_wrapup_form(
        session, task, wrapup=wrapup)


def card_suggests(*, wrapup: bool = False) -> Callable[[Session, Task | None], bool]:
    """`offers_tags` as the reads of a card's bundle ask it (bot.services.queries)."""
    return functools.partial(offers_tags, wrapup=wrapup)


def shows_wrapup_form(session: Session, task: Task | None, *, wrapup: bool = False) -> bool:
    """Whether `session_card` draws the wrap-up form: the one card with tag suggestions."""
    if session.saved_at is not None or session.phase is Phase.CONNECTED:
        return False
    if session.phase is Phase.RINGING and task is not None:
        return False
    return session.phase is Phase.ACW or wrapup or session.result is SessionResult.ACCEPTED


def outcome_card(session: Session, agent: Agent | None, now: datetime) -> Card:
    header = views.header(session)
    result = session.result
    if result is SessionResult.DECLINED:
        return cards.declined_card(v.OutcomeView(
            header, reason=session.note or None,
            rona_set=agent is not None and agent.is_rona(now)
            and agent.rona_session == session.id))
    if result in (SessionResult.RONA, SessionResult.MISSED):
        rona_set = (result is SessionResult.RONA and agent is not None and agent.is_rona(now)
                    and agent.rona_session == session.id)
        return cards.missed_card(v.OutcomeView(header, rona_set=rona_set))
    if result is SessionResult.CANCELLED:
        by = next((k for k, note in CANCEL_NOTES.items() if note == session.note), "customer")
        return cards.cancelled_card(v.OutcomeView(header, reason=by))
    if result is SessionResult.RESCINDED:
        return cards.taken_card(v.OutcomeView(header))
    if result is SessionResult.EXPIRED:
        return cards.expired_card(v.OutcomeView(header))
    if result is SessionResult.FAILED:
        return cards.failed_card(v.OutcomeView(header, reason=session.note or None))
    return cards.terminated_card(v.OutcomeView(header, reason=session.note or None))


def stale_card(session: Session | None, reason: str) -> Card:
    if session is None:
        return cards.info_card(v.InfoView(title="No longer active", text=reason))
    return cards.stale_card(v.OutcomeView(views.header(session), reason=reason))
