"""Which jobs exist: every timer handler, effect, event hook and commit listener, in one table."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from bot.domain import timers as tk
from bot.domain.service import Catalog
from bot.domain.webhooks.model import WEBHOOK
from bot.email.relay import ReplySender
from bot.services import agents, conversation, dispatch, lifecycle, offers, outbox, privacy
from bot.services.context import Ctx
from bot.services.engine import Engine
from bot.services.jobs import Effect, Listener, TimerHandler, Wiring
from bot.services.mail import SEND_REPLY
from bot.services.observe import Observer
from bot.services.ports import Clock, Store
from bot.teams.effects import TeamsEffects
from bot.teams.gateway import TeamsGateway
from bot.webhooks.sender import WebhookSender


async def _stale_sweep(ctx: Ctx, _ref: str) -> None:
    await lifecycle.stale_sweep(ctx)


async def _idle_timeout(ctx: Ctx, task_id: str) -> None:
    await conversation.idle_timeout(ctx, task_id)


TIMER_HANDLERS: dict[str, TimerHandler] = {
    tk.IDLE_TIMEOUT: _idle_timeout,
    tk.CONTEXT_PURGE: privacy.purge,
    tk.RING_TIMEOUT: offers.ring_timeout,
    tk.RONA_RESET: agents.rona_expired,
    tk.ACW_END: lifecycle.acw_timeout,
    tk.QUEUE_TIMEOUT: lifecycle.expire_task,
    tk.DECLINE_HOLD: dispatch.decline_hold_over,
    tk.STALE_SWEEP: _stale_sweep,
}
"""The use cases a timer runs when it falls due, by kind: every engine has these."""


@dataclass(frozen=True)
class Outside:
    """What the effects reach the world through; a part left None is off in this process."""

    teams: TeamsGateway | None = None  # the agent's card, chatrooms, relayed lines
    smtp_relay: tuple[str, int] | None = None  # mail replies (SWITCHBOARD_SMTP_RELAY)
    webhooks: aiohttp.ClientSession | None = None  # web-request templates
    chats: Listener | None = None  # live customer chats, woken as their rows commit


def wiring(engine: Engine, outside: Outside) -> Wiring:
    """The whole table for `engine`: its effects run their units of work on it."""
    teams, relay, http = outside.teams, outside.smtp_relay, outside.webhooks
    cards = (TeamsEffects(engine, teams.connector, teams.graph, bot_app_id=teams.bot_app_id,
                          catalog_app_id=teams.catalog_app_id) if teams is not None else None)
    replies = ReplySender(engine, relay) if relay is not None else None
    webhooks = WebhookSender(engine, http) if http is not None else None
    effects: dict[str, Effect | None] = {
        tk.SYNC_CARD: cards.sync_card if cards else None,
        tk.OPEN_CHAT: cards.open_chat if cards else None,
        tk.RELAY: cards.relay if cards else None,
        SEND_REPLY: replies.send if replies else None,
        WEBHOOK: webhooks.deliver if webhooks else None,
    }
    return Wiring(
        timers=TIMER_HANDLERS,
        effects={kind: effect for kind, effect in effects.items() if effect is not None},
        # Web requests are queued in the unit of work of their event, delivered by a job.
        event_hooks=(outbox.on_event,) if webhooks else (),
        listeners=(outside.chats,) if outside.chats else (),
    )


def build_engine(store: Store, clock: Clock, catalog: Catalog,
                 outside: Outside | None = None, observer: Observer | None = None) -> Engine:
    """An engine with every timer and the jobs of the parts `outside` has (none: timers only,
    as tests and tools want); `observer` logs, traces and counts what it runs."""
    return Engine(store, clock, catalog,
                  lambda engine: wiring(engine, outside or Outside()), observer=observer)
