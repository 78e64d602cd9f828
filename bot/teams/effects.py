"""Jobs that reach Teams: keep each agent's card in step, open chatrooms, relay messages."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from bot import cards
from bot.dialogs import views
from bot.dialogs.session_cards import card_suggests, session_card
from bot.domain.chatroom import session_topic
from bot.domain.message import RELAY_BATCH, ChatMessage
from bot.domain.session import Phase, Session
from bot.domain.timers import Timer
from bot.services import conversation, lifecycle, offers
from bot.services.context import Ctx
from bot.services.engine import Engine
from bot.services.queries import SessionBundle, header_due, load_bundle
from bot.teams.connector import ConnectorClient
from bot.teams.graph import GraphClient, GraphProtocolError
from bot.teams.outbound import OutboundError, OutboundHTTPError
from bot.teams.ratelimit import Priority
from bot.teams.replies import CARD_CONTENT_TYPE

log = logging.getLogger(__name__)

# Gone for good: the user blocked or removed the bot, or the conversation no longer exists.
GIVE_UP_STATUSES = {401, 403, 404}


def card_activity(card: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message",
            "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": card}]}


# How long after a session ended its card still counts as urgent (it must stop offering
# Terminate and show the wrap-up); later updates (wrap-up saves, ACW changes) are cosmetic.
URGENT_AFTER_END = timedelta(seconds=60)


def card_priority(session: Session, now: datetime) -> Priority:
    """Where the agent's card waits when the tenant budget is short: invitations, accepts and
    the end of a session (and of an offer) go first; later refreshes after relayed lines."""
    if session.phase in (Phase.RINGING, Phase.CONNECTED) or session.connected_at is None:
        return Priority.HIGH
    ended = session.terminated_at
    if ended is not None and now - ended <= URGENT_AFTER_END:
        return Priority.HIGH
    return Priority.LOW


def chat_url(chat_id: str) -> str:
    return f"https://teams.microsoft.com/l/chat/{quote(chat_id, safe='')}/conversations"


class TeamsEffects:
    def __init__(self, engine: Engine, connector: ConnectorClient, graph: GraphClient | None,
                 *, bot_app_id: str = "", catalog_app_id: str = "") -> None:
        self.engine = engine
        self.connector = connector
        self.graph = graph
        self.bot_app_id = bot_app_id
        self._catalog_app_id = catalog_app_id

    async def _bundle(self, session_id: str, *, for_card: bool = False) -> SessionBundle:
        return await self.engine.read(load_bundle, session_id,
                                      suggest=card_suggests() if for_card else None)

    async def sync_card(self, timer: Timer) -> None:
        bundle = await self._bundle(timer.ref, for_card=True)
        session, agent = bundle.session, bundle.agent
        if session is None or agent is None or not agent.conversation:
            return
        ref = agent.conversation
        card = session_card(session, bundle.task, agent, self.engine.catalog,
                            self.engine.clock.now(), suggestions=bundle.suggestions)
        activity = card_activity(card)
        priority = card_priority(session, self.engine.clock.now())
        try:
            if session.card_id:
                await self.connector.update_activity(ref["service_url"], ref["conversation_id"],
                                                     session.card_id, activity,
                                                     priority=priority)
                return
            card_id = await self.connector.send_to_conversation(
                ref["service_url"], ref["conversation_id"], activity, priority=priority)
        except OutboundHTTPError as exc:
            if exc.status in GIVE_UP_STATUSES:
                log.warning("card not delivered", extra={"status": exc.status,
                                                         "code": exc.code})
                if session.phase is Phase.RINGING and not session.card_id:
                    await self.engine.finish(timer, offers.card_undeliverable, session.id)
                return
            raise
        await self.engine.finish(timer, conversation.card_posted, session.id, card_id)

    async def open_chat(self, timer: Timer) -> None:
        bundle = await self._bundle(timer.ref)
        session, agent = bundle.session, bundle.agent
        if session is None or agent is None or session.phase is not Phase.CONNECTED:
            return
        if session.chat_id:
            return
        if self.graph is None or not agent.object_id:
            # Local mode: the agent's personal chat with the bot is the chatroom.
            await self.engine.finish(timer, lifecycle.chat_opened, session.id,
                                     str((agent.conversation or {}).get("conversation_id", "")),
                                     None)
            return
        topic = session_topic(session)
        try:
            chat_id = await self.graph.create_group_chat(topic, [agent.object_id])
            app_id = await self._catalog_app()
            if app_id:
                await self.graph.install_app_in_chat(chat_id, app_id)
        except (OutboundError, GraphProtocolError) as exc:
            log.warning("chat creation failed", extra={"error": str(exc)[:120]})
            await self.engine.finish(
                timer, lifecycle.chat_failed, session.id,
                "The chatroom could not be created, so the task went back to the queue.")
            return
        await self.engine.finish(timer, lifecycle.chat_opened, session.id, chat_id,
                                 chat_url(chat_id))

    async def _catalog_app(self) -> str:
        if not self._catalog_app_id and self.graph is not None and self.bot_app_id:
            self._catalog_app_id = await self.graph.find_catalog_app(self.bot_app_id) or ""
        return self._catalog_app_id

    async def relay(self, timer: Timer) -> None:
        """Bring the chatroom up to date by the relay rules (conversation.relay_step)."""
        async def load(ctx: Ctx) -> tuple[SessionBundle, list[ChatMessage]]:
            bundle = await load_bundle(ctx, timer.ref, suggest=header_due)
            if bundle.session is None or not bundle.session.chat_id:
                return bundle, []
            after = conversation.relay_from(bundle.session)
            return bundle, await ctx.uow.messages.after(bundle.session.task_id, after,
                                                        RELAY_BATCH)

        bundle, messages = await self.engine.read(load)
        session, agent = bundle.session, bundle.agent
        if session is None or agent is None or not session.chat_id or not agent.conversation:
            return
        step = conversation.relay_step(session, messages)
        if step is None:
            return
        service_url = agent.conversation["service_url"]
        if step.header:
            header = cards.chat_header_card(views.chat_header(
                session, self.engine.catalog, step.messages, suggestions=bundle.suggestions))
            await self.connector.send_to_conversation(service_url, session.chat_id,
                                                      card_activity(header))
            await self.engine.finish(timer, conversation.header_posted, session.id, step.through)
            return
        label = session.customer_label or "Customer"
        for n, message in enumerate(step.messages, 1):
            await self.connector.send_to_conversation(
                service_url, session.chat_id,
                {"type": "message", "textFormat": "plain", "text": f"{label}: {message.text}"},
                priority=Priority.LOW)
            if n < len(step.messages):  # a crash before the last must leave the job to finish it
                await self.engine.run(conversation.relayed, session.id, message.seq)
            else:
                await self.engine.finish(timer, conversation.relayed, session.id, message.seq)
