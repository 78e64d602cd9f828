"""The Cosmos DB store's two change feeds as one: a failing events feed loses no chat wake-up."""

from __future__ import annotations

from typing import Any, cast

from bot.services.ports import StoreUnavailable
from bot.storage.cosmos_changes import BOARD_POLLS, CosmosChangeFeed, CosmosFeeds


class Feed:
    """A change feed's answers, one a poll (an exception is raised); the container is the
    outer boundary the contract tests run against the Cosmos DB stand-in."""

    def __init__(self, *answers: set[str] | Exception) -> None:
        self.answers = list(answers)

    async def poll(self) -> set[str] | None:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def feeds(chats: Feed, boards: Feed) -> CosmosFeeds:
    return CosmosFeeds(cast(CosmosChangeFeed, chats), cast(CosmosChangeFeed, boards))


async def test_chat_wake_ups_go_out_when_the_events_feed_fails() -> None:
    chats = Feed(*([set()] * (BOARD_POLLS - 1)), {"chat:t1"}, {"chat:t2"})
    boards = Feed(StoreUnavailable("events feed down"))
    both = feeds(chats, boards)
    for _ in range(BOARD_POLLS - 1):
        assert await both.poll() == set()
    assert await both.poll() == {"chat:t1"}  # the events feed failed on this turn
    assert await both.poll() == {"chat:t2"}


async def test_the_events_feed_joins_every_fifth_poll() -> None:
    answers: list[Any] = [set()] * (BOARD_POLLS - 1)
    both = feeds(Feed(*answers, {"chat:t1"}), Feed({"board:sales"}))
    for _ in range(BOARD_POLLS - 1):
        await both.poll()
    assert await both.poll() == {"chat:t1", "board:sales"}
