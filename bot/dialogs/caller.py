"""Who is talking to the bot, and the directory that tells us who they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.cards.budget import Card


@dataclass(frozen=True)
class Caller:
    user_id: str
    name: str = ""
    object_id: str | None = None
    conversation_id: str = ""
    personal: bool = True  # the 1:1 chat with the bot, not a group chat
    reference: dict[str, Any] = field(default_factory=dict)  # opaque, for proactive sends
    card_id: str | None = None  # the card (message id) a card action came from


@dataclass(frozen=True)
class Member:
    name: str
    upn: str | None
    email: str | None
    object_id: str | None


class MemberDirectory(Protocol):
    async def lookup(self, caller: Caller) -> Member: ...


Reply = Card | str
