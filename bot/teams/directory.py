"""Who a Teams user is (UPN, email, Entra object id), from the Bot Connector member API."""

from __future__ import annotations

import logging

from bot.dialogs.caller import Caller, Member
from bot.teams.connector import ConnectorClient, ConnectorProtocolError
from bot.teams.outbound import OutboundError

log = logging.getLogger(__name__)


class TeamsMemberDirectory:
    def __init__(self, connector: ConnectorClient) -> None:
        self.connector = connector

    async def lookup(self, caller: Caller) -> Member:
        service_url = str(caller.reference.get("service_url", ""))
        try:
            data = await self.connector.get_member(service_url, caller.conversation_id,
                                                   caller.user_id)
        except (OutboundError, ConnectorProtocolError) as exc:
            log.warning("member lookup failed", extra={"error": type(exc).__name__})
            return Member(name=caller.name, upn=None, email=None, object_id=caller.object_id)
        return Member(
            name=str(data.get("name") or caller.name),
            upn=_text(data.get("userPrincipalName")),
            email=_text(data.get("email")),
            object_id=_text(data.get("aadObjectId")) or caller.object_id,
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
