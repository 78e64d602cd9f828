"""A lean Bot Framework adapter: botbuilder's turn pipeline over our pooled connector client.

CloudAdapter builds new msrest connector and token clients on every turn and opens a new
connection per reply; this adapter reuses one ConnectorClient (pooled aiohttp session, rate
limiter, retries) for every turn and every proactive message.
"""

from __future__ import annotations

import logging
from copy import copy
from http import HTTPStatus
from typing import Any

from botbuilder.core import BotAdapter, TurnContext
from botbuilder.core.activity_handler import ActivityHandler
from botbuilder.core.invoke_response import InvokeResponse
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ConversationReference,
    DeliveryModes,
    ResourceResponse,
)

from bot.teams.bf_auth import ChannelTokenValidator, TokenRejected
from bot.teams.connector import ConnectorClient
from bot.teams.service_urls import ServiceUrlPolicy, UntrustedServiceUrl
from bot.teams.wire import read_activity, write_activity

log = logging.getLogger(__name__)


class BadActivity(Exception):
    """The request body is not an activity we can handle."""


class Unauthorized(Exception):
    """The request did not carry a valid Bot Framework token."""


class InboundAuth:
    """Checks the Bot Framework JWT on inbound activities when an app id is configured."""

    def __init__(self, validator: ChannelTokenValidator) -> None:
        self.validator = validator

    async def check(self, activity: Activity, auth_header: str) -> None:
        if not auth_header:
            raise Unauthorized("missing Authorization header")
        try:
            await self.validator.check(auth_header, channel_id=activity.channel_id or "",
                                       service_url=activity.service_url)
        except TokenRejected as exc:
            raise Unauthorized(f"the token was not accepted: {exc}") from None


def parse_activity(body: Any, policy: ServiceUrlPolicy | None = None) -> Activity:
    if not isinstance(body, dict):
        raise BadActivity("the body must be a JSON object (an activity)")
    try:
        activity = read_activity(body)
    except Exception as exc:  # msrest raises DeserializationError and others
        raise BadActivity(f"the activity could not be read: {type(exc).__name__}") from None
    if not activity.type:
        raise BadActivity("the activity has no type")
    if not activity.conversation or not activity.conversation.id:
        raise BadActivity("the activity has no conversation.id")
    if not activity.service_url:
        raise BadActivity("the activity has no serviceUrl")
    if not isinstance(activity.service_url, str):
        raise BadActivity("the activity's serviceUrl is not a string")
    try:
        (policy or ServiceUrlPolicy()).check(activity.service_url)
    except UntrustedServiceUrl as exc:
        raise BadActivity(str(exc)) from None
    for key, members in (("membersAdded", activity.members_added),
                         ("membersRemoved", activity.members_removed)):
        if any(member is None or not member.id for member in members or ()):
            raise BadActivity(f"the activity's {key} holds a member without an id")
    if not activity.from_property or not activity.from_property.id:
        raise BadActivity("the activity has no from.id")
    return activity


class SwitchboardTurnContext(TurnContext):  # type: ignore[misc]
    """botbuilder's TurnContext, sending without a deepcopy of every outgoing activity.

    ``TurnContext.send_activities`` (botbuilder 4.17.1) deep-copies each activity before it
    addresses it, card content and all, so that the caller's object stays as it was. Only
    top-level attributes are set on the copy (the conversation reference, type, input hint,
    id), so a shallow copy keeps the caller's object just as untouched. The rest is
    botbuilder's code: expectReplies buffering, ``on_send_activities`` handlers, ``responded``.
    """

    async def send_activities(self, activities: list[Activity]) -> list[ResourceResponse]:
        sent_non_trace_activity = False
        ref = TurnContext.get_conversation_reference(self.activity)

        def activity_validator(activity: Activity) -> Activity:
            nonlocal sent_non_trace_activity
            if not getattr(activity, "type", None):
                activity.type = ActivityTypes.message
            if activity.type != ActivityTypes.trace:
                sent_non_trace_activity = True
            if not activity.input_hint:
                activity.input_hint = "acceptingInput"
            activity.id = None
            return activity

        output = [activity_validator(TurnContext.apply_conversation_reference(copy(act), ref))
                  for act in activities]

        async def logic() -> list[ResourceResponse]:
            if self.activity.delivery_mode == DeliveryModes.expect_replies:
                responses: list[ResourceResponse] = []
                for activity in output:
                    self.buffered_reply_activities.append(activity)
                    if activity.type == ActivityTypes.invoke_response:
                        self.turn_state[TurnContext._INVOKE_RESPONSE_KEY] = activity
                    responses.append(ResourceResponse())
                if sent_non_trace_activity:
                    self.responded = True
                return responses
            sent: list[ResourceResponse] = await self.adapter.send_activities(self, output)
            if sent_non_trace_activity:
                self.responded = True
            return sent

        if not self._on_send_activities:
            # botbuilder's _emit builds a self-referencing closure on every call: a reference
            # cycle per reply, left to the cyclic collector. Without handlers it only runs logic.
            return await logic()
        result: list[ResourceResponse] = await self._emit(self._on_send_activities, output,
                                                          logic())
        return result


class SwitchboardAdapter(BotAdapter):  # type: ignore[misc]
    def __init__(self, connector: ConnectorClient, auth: InboundAuth | None) -> None:
        super().__init__(on_turn_error=None)
        self.connector = connector
        self.auth = auth

    async def process(self, body: Any, auth_header: str,
                      bot: ActivityHandler) -> tuple[int, Any]:
        """Run one inbound activity through the bot; the HTTP status and body to answer."""
        activity = parse_activity(body, self.connector.policy)
        if self.auth is not None:
            await self.auth.check(activity, auth_header)
        context = SwitchboardTurnContext(self, activity)
        await self.run_pipeline(context, bot.on_turn)
        if activity.type == ActivityTypes.invoke:
            reply = context.turn_state.get(self._INVOKE_RESPONSE_KEY)
            if reply is None or not isinstance(reply.value, InvokeResponse):
                return HTTPStatus.NOT_IMPLEMENTED, None
            return int(reply.value.status), reply.value.body
        return HTTPStatus.OK, None

    async def send_activities(self, context: TurnContext,
                              activities: list[Activity]) -> list[ResourceResponse]:
        responses: list[ResourceResponse] = []
        for activity in activities:
            if activity.type == ActivityTypes.invoke_response:
                context.turn_state[self._INVOKE_RESPONSE_KEY] = activity
                responses.append(ResourceResponse())
                continue
            body = write_activity(activity)
            activity_id = await self.connector.send_to_conversation(
                activity.service_url, activity.conversation.id, body)
            responses.append(ResourceResponse(id=activity_id))
        return responses

    async def update_activity(self, context: TurnContext, activity: Activity) -> None:
        await self.connector.update_activity(activity.service_url, activity.conversation.id,
                                             activity.id, write_activity(activity))

    async def delete_activity(self, context: TurnContext,
                              reference: ConversationReference) -> None:
        raise NotImplementedError("Switchboard never deletes activities")
