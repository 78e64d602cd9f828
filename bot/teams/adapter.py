"""A lean channel adapter: the Agents SDK's turn pipeline over our pooled connector client.

The SDK's aiohttp CloudAdapter builds a connector client (and its client session) for every
turn and has no 429 handling; this adapter reuses one ConnectorClient (pooled aiohttp session,
rate limiter, retries) for every turn and every proactive message.
"""

from __future__ import annotations

import logging
from copy import copy
from http import HTTPStatus
from typing import Any

from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    ConversationReference,
    DeliveryModes,
    ResourceResponse,
    TurnContextProtocol,
)
from microsoft_agents.hosting.core import ActivityHandler, ChannelAdapter, TurnContext

from bot.teams.bf_auth import ChannelTokenValidator, TokenRejected
from bot.teams.connector import ConnectorClient
from bot.teams.service_urls import ServiceUrlPolicy, UntrustedServiceUrl
from bot.teams.wire import ActivityUnreadable, read_activity, write_activity

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
            await self.validator.check(auth_header, channel_id=str(activity.channel_id or ""),
                                       service_url=str(activity.service_url),
                                       tenant=tenant_of(activity))
        except TokenRejected as exc:
            raise Unauthorized(f"the token was not accepted: {exc}") from None


def reference_of(activity: Activity) -> ConversationReference:
    """``activity.get_conversation_reference()`` without the SDK's copies of the accounts (a
    third of its cost): they are shared with the activity, which nothing changes after it was
    read, and pydantic takes model instances as they are."""
    keep_id = activity.type != ActivityTypes.conversation_update or \
        activity.channel_id not in ("directline", "webchat")
    return ConversationReference.model_validate({
        "activity_id": activity.id if keep_id else None, "user": activity.from_property,
        "agent": activity.recipient, "conversation": activity.conversation,
        "channel_id": activity.channel_id, "locale": activity.locale,
        "service_url": activity.service_url, "request_id": activity.request_id})


def tenant_of(activity: Activity) -> str:
    """The Entra tenant an activity comes from (Teams names it twice), or ""."""
    if activity.conversation and activity.conversation.tenant_id:
        return activity.conversation.tenant_id
    data = activity.channel_data
    tenant = data.get("tenant") if isinstance(data, dict) else None
    found = tenant.get("id") if isinstance(tenant, dict) else None
    return found if isinstance(found, str) else ""


def parse_activity(body: Any, policy: ServiceUrlPolicy | None = None) -> Activity:
    if not isinstance(body, dict):
        raise BadActivity("the body must be a JSON object (an activity)")
    if not body.get("type"):
        raise BadActivity("the activity has no type")
    try:
        activity = read_activity(body)
    except ActivityUnreadable as exc:
        raise BadActivity(f"the activity could not be read: {exc}") from None
    if not activity.conversation or not activity.conversation.id:
        raise BadActivity("the activity has no conversation.id")
    if not activity.service_url:
        raise BadActivity("the activity has no serviceUrl")
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


class SwitchboardTurnContext(TurnContext):
    """The SDK's TurnContext, sending without a deepcopy of every outgoing activity.

    ``TurnContext.send_activities`` (hosting-core 1.9) deep-copies each activity, card content
    and all, so that the caller's object stays as it was. Only top-level attributes are set on
    the copy (the conversation reference, type, input hint, id), so a shallow copy keeps the
    caller's object just as untouched. The conversation reference is made once per turn
    (``reference_of``). The SDK leaves expectReplies to its CloudAdapter; this context buffers
    those replies itself, as the Bot Framework SDK's TurnContext did.
    """

    _reference: ConversationReference | None = None

    async def send_activities(self, activities: list[Activity]) -> list[ResourceResponse]:
        sent_non_trace_activity = False
        if self._reference is None:
            self._reference = reference_of(self.activity)
        ref = self._reference

        def addressed(activity: Activity) -> Activity:
            nonlocal sent_non_trace_activity
            activity = copy(activity).apply_conversation_reference(ref)
            if not activity.type:
                activity.type = ActivityTypes.message
            if activity.type != ActivityTypes.trace:
                sent_non_trace_activity = True
            if not activity.input_hint:
                activity.input_hint = "acceptingInput"
            activity.id = None
            return activity

        output = [addressed(activity) for activity in activities]

        async def logic() -> list[ResourceResponse]:
            if self.activity.delivery_mode == DeliveryModes.expect_replies:
                responses: list[ResourceResponse] = []
                for activity in output:
                    self.buffered_reply_activities.append(activity)
                    if activity.type == ActivityTypes.invoke_response:
                        self.turn_state[ChannelAdapter.INVOKE_RESPONSE_KEY] = activity
                    responses.append(ResourceResponse())
            else:
                responses = await self.adapter.send_activities(self, output)
            if sent_non_trace_activity:
                self.responded = True
            return responses

        if not self._on_send_activities:
            return await logic()
        return await self._emit(self._on_send_activities, output, logic)


class SwitchboardAdapter(ChannelAdapter):
    def __init__(self, connector: ConnectorClient, auth: InboundAuth | None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
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
            reply = context.turn_state.get(self.INVOKE_RESPONSE_KEY)
            value = reply.value if isinstance(reply, Activity) else None
            if not isinstance(value, dict) or not isinstance(value.get("status"), int):
                return HTTPStatus.NOT_IMPLEMENTED, None
            return value["status"], value.get("body")
        return HTTPStatus.OK, None

    async def send_activities(self, context: TurnContextProtocol[Any],
                              activities: list[Activity]) -> list[ResourceResponse]:
        responses: list[ResourceResponse] = []
        for activity in activities:
            if activity.type == ActivityTypes.invoke_response:
                context.turn_state[self.INVOKE_RESPONSE_KEY] = activity
                responses.append(ResourceResponse())
                continue
            body = write_activity(activity)
            activity_id = await self.connector.send_to_conversation(
                activity.service_url, activity.conversation.id, body)
            sent = ResourceResponse(id=activity_id) if activity_id else ResourceResponse()
            responses.append(sent)
        return responses

    async def update_activity(self, context: TurnContextProtocol[Any], activity: Activity) -> None:
        if not activity.id:
            raise ValueError("an update names the activity it replaces")
        await self.connector.update_activity(activity.service_url, activity.conversation.id,
                                             activity.id, write_activity(activity))

    async def delete_activity(self, context: TurnContextProtocol[Any],
                              reference: ConversationReference) -> None:
        raise NotImplementedError("Switchboard never deletes activities")
