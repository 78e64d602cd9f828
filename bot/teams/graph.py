"""Microsoft Graph client for chatrooms: create a group chat, find and install the Teams app."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.domain.chatroom import cut_topic
from bot.teams.outbound import OutboundResponse, OutboundSender, json_request
from bot.teams.tokens import TokenProvider

GRAPH_V1_BASE = "https://graph.microsoft.com/v1.0"


class GraphProtocolError(Exception):
    """Graph answered success with a body we cannot use."""


class GraphClient:
    """The few Graph calls Switchboard needs, over the shared sender and pooled session.

    Chat creation and catalog lookups take only the tenant bucket (they are independent and
    may run concurrently); calls about one chat share the bucket ``graph:<chat id>``. With
    ``tokens`` (see bot.teams.credentials) requests carry an app-only bearer
    token. Member and app bindings are built on ``base_url``, so a national cloud or a local
    stand-in gets consistent references.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        sender: OutboundSender,
        *,
        tokens: TokenProvider | None = None,
        base_url: str = GRAPH_V1_BASE,
        timeout: float = 30.0,
    ) -> None:
        self._session = session
        self._sender = sender
        self._tokens = tokens
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout

    def user_bind(self, aad_object_id: str) -> str:
        """The ``user@odata.bind`` reference of a user."""
        return f"{self.base_url}/users('{_odata_literal(aad_object_id)}')"

    def app_bind(self, catalog_app_id: str) -> str:
        """The ``teamsApp@odata.bind`` reference of a catalog app."""
        return f"{self.base_url}/appCatalogs/teamsApps/{quote(catalog_app_id, safe='')}"

    def chat_body(self, topic: str, member_aad_ids: Sequence[str]) -> dict[str, Any]:
        """The exact JSON body of ``POST /chats`` for a group chat."""
        return {
            "chatType": "group",
            "topic": cut_topic(topic),
            "members": [
                {
                    "@odata.type": "#microsoft.graph.aadUserConversationMember",
                    "roles": ["owner"],
                    "user@odata.bind": self.user_bind(member),
                }
                for member in member_aad_ids
            ],
        }

    async def create_group_chat(self, topic: str, member_aad_ids: Sequence[str]) -> str:
        """Create a group chat (topic cut to 249 characters) and return its id."""
        if not member_aad_ids:
            raise ValueError("a group chat needs at least one member")
        body = self.chat_body(topic, member_aad_ids)
        response = await self._call(None, "POST", f"{self.base_url}/chats", body=body)
        return response.id_of("create_group_chat", GraphProtocolError)

    async def find_catalog_app(self, external_id: str) -> str | None:
        """The org catalog id of the app whose manifest id is ``external_id``; None if absent."""
        query = {"$filter": f"externalId eq '{_odata_literal(external_id)}'"}
        url = f"{self.base_url}/appCatalogs/teamsApps"
        response = await self._call(None, "GET", url, params=query)
        data = response.json()
        values = data.get("value") if isinstance(data, dict) else None
        if not isinstance(values, list):
            raise GraphProtocolError("find_catalog_app: the answer has no value list")
        for app in values:
            if isinstance(app, dict) and isinstance(app.get("id"), str):
                return str(app["id"])
        return None

    async def install_app_in_chat(self, chat_id: str, catalog_app_id: str) -> None:
        """Install the catalog app into a chat, so the bot can post there."""
        url = f"{self.base_url}/chats/{quote(chat_id, safe='')}/installedApps"
        # The manifest asks for ChatMessage.Read.Chat (resource-specific consent) so the bot
        # sees every message in the chatroom, not only @mentions; installing such an app
        # grants that consent in the same call.
        body = {
            "teamsApp@odata.bind": self.app_bind(catalog_app_id),
            "consentedPermissionSet": {"resourceSpecificPermissions": [
                {"permissionValue": "ChatMessage.Read.Chat", "permissionType": "Application"},
            ]},
        }
        await self._call(f"graph:{chat_id}", "POST", url, body=body)

    async def _call(
        self,
        bucket_key: str | None,
        method: str,
        url: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> OutboundResponse:
        factory = json_request(
            self._session,
            method,
            url,
            body=body,
            params=params,
            tokens=self._tokens,
            timeout=self._timeout,
        )
        return await self._sender.call(bucket_key, factory)


def _odata_literal(value: str) -> str:
    """Escape a value for a single-quoted OData string literal."""
    return value.replace("'", "''")
