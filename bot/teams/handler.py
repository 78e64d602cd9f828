"""The activity handler: translates Teams activities into desk calls and replies; no rules."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from microsoft_agents.activity import (
    Activity,
    Attachment,
    ChannelAccount,
    InvokeResponse,
    TurnContextProtocol,
)
from microsoft_agents.hosting.core import ActivityHandler, MessageFactory

from bot.dialogs.caller import Caller, Reply
from bot.dialogs.desk import Desk
from bot.teams.adapter import tenant_of
from bot.teams.replies import CARD_CONTENT_TYPE, card_invoke_response, search_response

log = logging.getLogger(__name__)

PERSONAL = "personal"
Turn = TurnContextProtocol[Any]


def caller_of(activity: Activity) -> Caller:
    sender: ChannelAccount = activity.from_property
    conversation = activity.conversation
    tenant = tenant_of(activity)
    personal = (conversation.conversation_type or PERSONAL) == PERSONAL
    return Caller(
        user_id=sender.id,
        name=sender.name or "",
        object_id=sender.aad_object_id,
        conversation_id=conversation.id,
        personal=personal,
        card_id=activity.reply_to_id or None,
        reference={
            "service_url": activity.service_url,
            "conversation_id": conversation.id,
            "tenant_id": tenant,
            "bot_id": activity.recipient.id if activity.recipient else "",
            "user_id": sender.id,
            "channel_id": str(activity.channel_id or "msteams"),
        },
    )


def as_activity(reply: Reply) -> Activity:
    if isinstance(reply, str):
        return MessageFactory.text(reply)
    card: Activity = MessageFactory.attachment(
        Attachment(content_type=CARD_CONTENT_TYPE, content=reply))
    return card


def _without_mention(activity: Activity) -> str:
    """The text without the bot's @mention; a malformed mention leaves the text as it is."""
    if not activity.entities:
        return str(activity.text or "")
    try:
        return str(activity.remove_recipient_mention() or "")
    except (KeyError, TypeError, AttributeError, ValueError):
        return str(activity.text or "")


class SwitchboardBot(ActivityHandler):
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def _send(self, turn_context: Turn, replies: list[Reply]) -> None:
        for reply in replies:
            await turn_context.send_activity(as_activity(reply))

    async def on_installation_update_add(self, turn_context: Turn) -> None:
        caller = caller_of(turn_context.activity)
        if caller.personal:
            await self._send(turn_context, await self.desk.installed(caller))

    async def on_members_added_activity(self, members_added: list[ChannelAccount],
                                        turn_context: Turn) -> None:
        # Teams sends installationUpdate too, which brings the welcome card; here the
        # reference is only refreshed, so a concurrent pair never welcomes twice.
        activity = turn_context.activity
        caller = caller_of(activity)
        bot_id = activity.recipient.id if activity.recipient else None
        if caller.personal and any(m.id == bot_id for m in members_added or []):
            await self.desk.remember(caller)

    async def on_message_activity(self, turn_context: Turn) -> None:
        activity = turn_context.activity
        caller = caller_of(activity)
        value = activity.value if isinstance(activity.value, dict) else None
        if value is not None and isinstance(value.get("verb"), str):
            # Action.Submit fallback from an old client: same verbs, card updated in place.
            card = await self.desk.action(caller, value["verb"], value)
            if activity.reply_to_id:
                update = as_activity(card)
                update.id = activity.reply_to_id
                await turn_context.update_activity(update)
            else:
                await self._send(turn_context, [card])
            return
        text = _without_mention(activity).strip()
        if not text:
            return
        if caller.personal:
            replies = await self.desk.command(caller, text)
        else:
            replies = await self.desk.chatroom_message(caller, text)
        await self._send(turn_context, replies)

    async def on_invoke_activity(self, turn_context: Turn) -> InvokeResponse:
        activity = turn_context.activity
        caller = caller_of(activity)
        value: dict[str, Any] = activity.value if isinstance(activity.value, dict) else {}
        if activity.name == "adaptiveCard/action":
            action = value.get("action") if isinstance(value.get("action"), dict) else {}
            verb = action.get("verb") if isinstance(action, dict) else None
            data = action.get("data") if isinstance(action, dict) else None
            if not isinstance(verb, str):
                return InvokeResponse(status=HTTPStatus.BAD_REQUEST,
                                      body=card_invoke_response(None, "The action has no verb."))
            card = await self.desk.action(caller, verb, data if isinstance(data, dict) else {})
            return InvokeResponse(status=HTTPStatus.OK, body=card_invoke_response(card))
        if activity.name == "application/search":
            query = value.get("queryText")
            options = value.get("queryOptions")
            top = options.get("top") if isinstance(options, dict) else None
            tags = await self.desk.suggest_tags(caller, activity.reply_to_id,
                                                query if isinstance(query, str) else "",
                                                top if isinstance(top, int) else 15)
            return InvokeResponse(status=HTTPStatus.OK, body=search_response(tags))
        return InvokeResponse(status=HTTPStatus.NOT_IMPLEMENTED,
                              body={"message": f"Unknown invoke {str(activity.name)[:60]!r}."})
