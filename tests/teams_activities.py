"""Activities shaped the way Teams sends them, for driving /api/messages in tests."""

from __future__ import annotations

import itertools
from typing import Any

BOT_ID = "28:switchboard-bot"
TENANT = "tenant-1"
_ids = itertools.count(1)


def _base(kind: str, service_url: str, conversation_id: str, user_id: str, name: str,
          *, conversation_type: str = "personal", aad: str | None = None) -> dict[str, Any]:
    return {
        "type": kind,
        "id": f"incoming-{next(_ids)}",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": user_id, "name": name, "aadObjectId": aad},
        "recipient": {"id": BOT_ID, "name": "Switchboard"},
        "conversation": {"id": conversation_id, "conversationType": conversation_type,
                         "tenantId": TENANT},
        "channelData": {"tenant": {"id": TENANT}},
    }


def installation(service_url: str, conversation_id: str, user_id: str, name: str,
                 aad: str | None = None) -> dict[str, Any]:
    activity = _base("installationUpdate", service_url, conversation_id, user_id, name, aad=aad)
    activity["action"] = "add"
    return activity


def message(service_url: str, conversation_id: str, user_id: str, name: str, text: str, *,
            group: bool = False, aad: str | None = None) -> dict[str, Any]:
    activity = _base("message", service_url, conversation_id, user_id, name, aad=aad,
                     conversation_type="groupChat" if group else "personal")
    activity["text"] = text
    return activity


def card_action(service_url: str, conversation_id: str, user_id: str, name: str, verb: str,
                data: dict[str, Any], *, reply_to: str | None = None) -> dict[str, Any]:
    activity = _base("invoke", service_url, conversation_id, user_id, name)
    activity["name"] = "adaptiveCard/action"
    activity["value"] = {"action": {"type": "Action.Execute", "verb": verb, "data": data},
                         "trigger": "manual"}
    if reply_to:
        activity["replyToId"] = reply_to
    return activity


def search(service_url: str, conversation_id: str, user_id: str, name: str, text: str, *,
           reply_to: str | None = None) -> dict[str, Any]:
    activity = _base("invoke", service_url, conversation_id, user_id, name)
    activity["name"] = "application/search"
    activity["value"] = {"queryText": text, "queryOptions": {"skip": 0, "top": 15},
                         "dataset": "tags"}
    if reply_to:
        activity["replyToId"] = reply_to
    return activity
