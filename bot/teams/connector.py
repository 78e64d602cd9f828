"""Bot Connector REST client (send, update, 1:1 create, member lookup) over the outbound sender."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.teams.outbound import OutboundResponse, OutboundSender, json_request
from bot.teams.ratelimit import Priority
from bot.teams.service_urls import ServiceUrlPolicy
from bot.teams.tokens import TokenProvider


class ConnectorProtocolError(Exception):
    """The Bot Connector answered success with a body we cannot use."""


def _segment(value: str) -> str:
    return quote(value, safe="")


def _conversation_url(service_url: str, conversation_id: str, *rest: str) -> str:
    path = "/".join(_segment(part) for part in (conversation_id, *rest))
    return f"{service_url.rstrip('/')}/v3/conversations/{path}"


class ConnectorClient:
    """Calls ``{serviceUrl}/v3/...`` with one pooled session the owner creates and closes.

    Every request goes through the :class:`OutboundSender`: sends and updates for a
    conversation share the bucket key ``conversation_id`` (so an update never overtakes the
    send it updates); member lookups use ``members:<conversation id>``; 1:1 conversation
    creation uses one bucket for the bot. With ``tokens`` (a Bot Framework token provider,
    see bot.teams.credentials) each request carries a bearer token;
    without (local mode, Agents Playground) no Authorization header is sent. Activities are
    plain JSON dicts. Failures raise :class:`bot.teams.outbound.OutboundHTTPError` (e.g. 403
    ``MessageWritesBlocked``, 404) or :class:`bot.teams.outbound.OutboundGaveUp`; a serviceUrl
    outside ``policy`` raises :class:`bot.teams.service_urls.UntrustedServiceUrl` before any
    request (a stored reference is checked again at every call).
    """

    CREATE_CONVERSATION_BUCKET = "connector:create-conversation"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        sender: OutboundSender,
        *,
        tokens: TokenProvider | None = None,
        timeout: float = 30.0,
        policy: ServiceUrlPolicy | None = None,
    ) -> None:
        self._session = session
        self.policy = policy or ServiceUrlPolicy()
        self._sender = sender
        self._tokens = tokens
        self._timeout = timeout

    async def send_to_conversation(
        self, service_url: str, conversation_id: str, activity: Mapping[str, Any], *,
        priority: int = Priority.NORMAL,
    ) -> str:
        """Post an activity to a conversation; return the new activity id."""
        body = {"type": "message", **activity}
        url = _conversation_url(service_url, conversation_id, "activities")
        response = await self._call(conversation_id, "POST", url, body, priority)
        return response.id_of("send_to_conversation", ConnectorProtocolError)

    async def update_activity(
        self,
        service_url: str,
        conversation_id: str,
        activity_id: str,
        activity: Mapping[str, Any],
        *,
        priority: int = Priority.NORMAL,
    ) -> None:
        """Replace an activity already posted (e.g. an invitation card) in place."""
        body = {"type": "message", **activity, "id": activity_id}
        url = _conversation_url(service_url, conversation_id, "activities", activity_id)
        await self._call(conversation_id, "PUT", url, body, priority)

    async def create_personal_conversation(
        self, service_url: str, tenant_id: str, bot_id: str, user_id: str
    ) -> str:
        """Create (or get) the 1:1 chat between the bot and a user; return its conversation id."""
        body = {
            "bot": {"id": bot_id},
            "members": [{"id": user_id}],
            "isGroup": False,
            "tenantId": tenant_id,
            "channelData": {"tenant": {"id": tenant_id}},
        }
        url = f"{service_url.rstrip('/')}/v3/conversations"
        response = await self._call(self.CREATE_CONVERSATION_BUCKET, "POST", url, body)
        return response.id_of("create_personal_conversation", ConnectorProtocolError)

    async def get_member(
        self, service_url: str, conversation_id: str, user_id: str
    ) -> dict[str, Any]:
        """One member of a conversation (id, name, userPrincipalName, email, aadObjectId...)."""
        url = _conversation_url(service_url, conversation_id, "members", user_id)
        response = await self._call(f"members:{conversation_id}", "GET", url, None)
        data = response.json()
        if not isinstance(data, dict):
            raise ConnectorProtocolError("get_member: the answer is not a JSON object")
        return data

    async def _call(
        self, bucket_key: str, method: str, url: str, body: Mapping[str, Any] | None,
        priority: int = Priority.NORMAL,
    ) -> OutboundResponse:
        self.policy.check(url)
        factory = json_request(
            self._session, method, url, body=body, tokens=self._tokens, timeout=self._timeout
        )
        return await self._sender.call(bucket_key, factory, priority)
