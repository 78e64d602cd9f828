"""The chatroom's name: `<Service> ¦ <Customer>`, as Teams shows it and the header card repeats."""

from __future__ import annotations

from bot.domain.session import Session

TOPIC_SEPARATOR = " ¦ "
MAX_TOPIC_LENGTH = 249  # Graph rejects longer chat topics


def cut_topic(topic: str) -> str:
    """A chat topic no longer than :data:`MAX_TOPIC_LENGTH` characters."""
    return topic[:MAX_TOPIC_LENGTH]


def chat_topic(service_name: str, customer_label: str) -> str:
    """``<Service> ¦ <Customer>`` cut to 249 characters."""
    return cut_topic(f"{service_name}{TOPIC_SEPARATOR}{customer_label}")


def session_topic(session: Session) -> str:
    """The topic of a session's chatroom (an anonymous customer is a Visitor)."""
    return chat_topic(session.service_name or session.service_id,
                      session.customer_label or "Visitor")
