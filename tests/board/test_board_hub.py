"""The board hub (which open boards a change-feed topic wakes) and the figures cache."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.board.api import FiguresCache
from bot.board.live import BoardHub
from bot.services.context import ALL_BOARDS, board_topic


async def test_topics_wake_the_boards_of_their_service_only() -> None:
    hub = BoardHub()
    sales, both = hub.subscribe(["sales"]), hub.subscribe(["sales", "billing"])
    assert hub.open_boards == 2
    hub.notify({board_topic("billing"), "task-1"})  # a chat's topic wakes no board
    assert not await sales.wait(0.01)
    assert await both.wait(0.01)
    assert not await both.wait(0.01)  # one ring, one wake-up
    hub.notify(None)  # the feed lost track: every board reads again
    assert await sales.wait(0.01) and await both.wait(0.01)
    hub.notify({ALL_BOARDS})  # a change that does not say which service (Cosmos DB)
    assert await sales.wait(0.01) and await both.wait(0.01)
    hub.unsubscribe(sales)
    hub.notify({board_topic("sales")})
    assert not await sales.wait(0.01)
    assert hub.open_boards == 1


async def test_closing_ends_every_stream_and_later_ones() -> None:
    hub = BoardHub()
    bell = hub.subscribe(["sales"])
    hub.close()
    assert bell.closed and await bell.wait(0.01)
    assert hub.subscribe(["sales"]).closed


def test_the_figures_cache_keeps_figures_for_a_while_by_service_and_day() -> None:
    cache = FiguresCache(every=10.0)
    day, other_day = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 1, 23, tzinfo=UTC)
    cache.keep("sales", day, 100.0, {"service_level": 0.5})
    assert cache.fresh("sales", day, 109.9) == {"service_level": 0.5}
    assert cache.fresh("sales", other_day, 105.0) is None  # another zone's midnight
    assert cache.fresh("billing", day, 105.0) is None
    assert cache.fresh("sales", day, 110.0) is None  # read again
    cache.keep("billing", day, 120.0, {})
    assert cache.fresh("sales", day, 100.0) is None  # old entries go when new ones come
