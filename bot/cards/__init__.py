"""Adaptive Cards 1.5 for Teams: pure functions from view models (views.py) to card dicts."""

from bot.cards.budget import MAX_CARD_BYTES, card_bytes
from bot.cards.chat import chat_header_card
from bot.cards.concluded import concluded_card
from bot.cards.durations import in_words
from bot.cards.invitation import invitation_card
from bot.cards.nar import nar_card
from bot.cards.outcomes import (
    accepted_card,
    cancelled_card,
    declined_card,
    expired_card,
    failed_card,
    missed_card,
    stale_card,
    taken_card,
    terminated_card,
)
from bot.cards.session_detail import session_detail_card
from bot.cards.sessions import sessions_card
from bot.cards.status import status_card
from bot.cards.text import plain
from bot.cards.verbs import TAGS_DATASET, InputId, Verb
from bot.cards.welcome import help_card, info_card, welcome_card
from bot.cards.wrapup import wrapup_card

__all__ = [
    "MAX_CARD_BYTES",
    "TAGS_DATASET",
    "InputId",
    "Verb",
    "accepted_card",
    "cancelled_card",
    "card_bytes",
    "chat_header_card",
    "concluded_card",
    "declined_card",
    "expired_card",
    "failed_card",
    "help_card",
    "in_words",
    "info_card",
    "invitation_card",
    "missed_card",
    "nar_card",
    "plain",
    "session_detail_card",
    "sessions_card",
    "stale_card",
    "status_card",
    "taken_card",
    "terminated_card",
    "welcome_card",
    "wrapup_card",
]
