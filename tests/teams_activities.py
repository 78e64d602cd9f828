"""Activities shaped the way Teams sends them, for driving /api/messages in tests."""

from __future__ import annotations

import itertools
from typing import Any

BOT_ID = "28:switchboard-bot"
TENANT = "tenant-1"
_ids = itertools.count(1)


def activity(kind: str, service_url: str, conversation_id: str, user_id: str, name: str,
             /, *, conversation_type: str = "personal", aad: str | None = None,
             tenant: str = TENANT, bot_id: str = BOT_ID, **fields: Any) -> dict[str, Any]:
    """An activity of this kind from a user to the bot; `fields` are added as they are."""
    return {
        "type": kind,
        "id": f"incoming-{next(_ids)}",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": user_id, "name": name, "aadObjectId": aad},
        "recipient": {"id": bot_id, "name": "Switchboard"},
        "conversation": {"id": conversation_id, "conversationType": conversation_type,
                         "tenantId": tenant},
        "channelData": {"tenant": {"id": tenant}},
        **fields,
    }


def installation(service_url: str, conversation_id: str, user_id: str, name: str,
                 aad: str | None = None) -> dict[str, Any]:
    return activity("installationUpdate", service_url, conversation_id, user_id, name, aad=aad,
                    action="add")


def message(service_url: str, conversation_id: str, user_id: str, name: str, text: str, *,
            group: bool = False, aad: str | None = None) -> dict[str, Any]:
    return activity("message", service_url, conversation_id, user_id, name, aad=aad,
                    conversation_type="groupChat" if group else "personal", text=text)


def card_action(service_url: str, conversation_id: str, user_id: str, name: str, verb: str,
                data: dict[str, Any], *, reply_to: str | None = None,
                aad: str | None = None) -> dict[str, Any]:
    return activity("invoke", service_url, conversation_id, user_id, name, aad=aad,
                    **invoke_fields("adaptiveCard/action",
                                    {"action": {"type": "Action.Execute", "verb": verb,
                                                "data": data}, "trigger": "manual"}, reply_to))


def search(service_url: str, conversation_id: str, user_id: str, name: str, text: str, *,
           reply_to: str | None = None) -> dict[str, Any]:
    return activity("invoke", service_url, conversation_id, user_id, name,
                    **invoke_fields("application/search",
                                    {"queryText": text, "queryOptions": {"skip": 0, "top": 15},
                                     "dataset": "tags"}, reply_to))


def invoke_fields(name: str, value: dict[str, Any], reply_to: str | None) -> dict[str, Any]:
    """The fields of an invoke activity (replyToId only when it answers a card)."""
    fields: dict[str, Any] = {"name": name, "value": value}
    if reply_to:
        fields["replyToId"] = reply_to
    return fields
