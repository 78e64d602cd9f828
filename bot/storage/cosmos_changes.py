"""The Cosmos DB change feeds: which conversations other instances wrote to (chat rows), and
which services' supervisor boards their events concern."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Self

from azure.core.exceptions import AzureError
from azure.cosmos import exceptions as cosmos_errors
from azure.cosmos.aio import ContainerProxy

from bot.services.context import ALL_BOARDS, board_topic
from bot.services.ports import StoreUnavailable
from bot.storage.cosmos_base import (
    unavailable,
)

log = logging.getLogger(__name__)

PAGE = 500  # items per change-feed page
POLL_EVERY = 0.1  # seconds: ten change-feed reads a second per instance (a 304 is ~1 RU)
BOARD_POLLS = 5  # the events feed is read every 5th poll (0.5 s): boards may lag, chats not

Topics = Callable[[Mapping[str, Any]], str | None]
"""The topic a changed document wakes (None: none)."""


def conversation_of(doc: Mapping[str, Any]) -> str | None:
    """A chat row wakes its conversation."""
    task_id = doc.get("task_id")
    return task_id if isinstance(task_id, str) else None


def board_of(doc: Mapping[str, Any]) -> str | None:
    """An event wakes the boards of its service; an agent's own (state changes) every board,
    as it does not name the services."""
    service_id = doc.get("service_id")
    if isinstance(service_id, str) and service_id:
        return board_topic(service_id)
    return ALL_BOARDS if doc.get("agent_id") else None



class CosmosChangeFeed:
    """Follows the `messages` container's change feed (latest versions, in order within each
    task's partition) from a continuation token: every row a customer's chat shows is a
    message document, and its `task_id` is the conversation to wake. One poll is one
    change-feed read per partition key range of the container (a 304 when nothing changed),
    whatever the number of open chats. Own commits come back too (a document does not say who
    wrote it): their chats were woken at once and find nothing new."""

    every = POLL_EVERY

    def __init__(self, container: ContainerProxy, topic_of: Topics = conversation_of) -> None:
        self.container = container
        self.topic_of = topic_of
        self.continuation: str | None = None

    @classmethod
    async def start(cls, container: ContainerProxy,
                    topic_of: Topics = conversation_of) -> Self:
        feed = cls(container, topic_of)
        await feed.poll()
        return feed

    async def poll(self) -> set[str] | None:
        where: dict[str, Any] = ({"continuation": self.continuation} if self.continuation
                                 else {"start_time": "Now"})
        topics: set[str] = set()
        # Each read's headers: the SDK puts the continuation for the next read in their etag,
        # also after a read that found nothing (a 304, which yields no page to ask).
        answers: list[Mapping[str, Any]] = []
        try:
            pager = self.container.query_items_change_feed(
                max_item_count=PAGE, response_hook=lambda headers, _: answers.append(headers),
                **where).by_page()
            async for page in pager:
                async for doc in page:
                    topic = self.topic_of(doc)
                    if topic is not None:
                        topics.add(topic)
        except cosmos_errors.CosmosHttpResponseError as exc:
            if exc.status_code in (400, 410):  # the token is no longer valid: from now on
                log.warning("change feed restarted", extra={"status": exc.status_code})
                self.continuation = None
                return None
            raise unavailable(exc) from exc
        except AzureError as exc:
            raise unavailable(exc) from exc
        token = answers[-1].get("etag") if answers else None
        if isinstance(token, str) and token:
            self.continuation = token
        return topics


class CosmosFeeds:
    """The chat rows' feed at every poll and the events' feed at every BOARD_POLLS-th: one
    change feed for the instance, as the store's port has it."""

    every = POLL_EVERY

    def __init__(self, chats: CosmosChangeFeed, boards: CosmosChangeFeed) -> None:
        self.chats = chats
        self.boards = boards
        self.polls = 0

    async def poll(self) -> set[str] | None:
        topics = await self.chats.poll()
        self.polls += 1
        if self.polls % BOARD_POLLS:
            return topics
        try:
            boards = await self.boards.poll()
        except StoreUnavailable:
            # The events' feed keeps its token and catches up at its next turn; the chats'
            # feed has moved on already, so its wake-ups must go out now.
            log.warning("board changes not read", extra={"feed": "events"})
            return topics
        if topics is None or boards is None:
            return None
        return topics | boards
