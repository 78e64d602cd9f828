"""The store's change feed carries the supervisor boards' topics across instances, on both
backends: an event of a service committed on one instance wakes its boards on another."""

from __future__ import annotations

from bot.bootstrap import build_engine
from bot.services.context import Ctx, board_topic
from bot.services.engine import Engine
from bot.services.ports import Store
from tests.builders import catalog
from tests.contract.conftest import Backend
from tests.contract.test_change_feed import poll_until
from tests.fakes import FakeClock


def engine_on(store: Store) -> Engine:
    return build_engine(store, FakeClock(), catalog({"id": "sales"}, {"id": "billing"}))


async def an_event(ctx: Ctx, service_id: str) -> None:
    await ctx.emit("test.happened", service_id=service_id)


async def test_an_event_of_a_service_wakes_its_boards_elsewhere(backend: Backend) -> None:
    one, two = await backend.open(), await backend.open()
    try:
        feed = await two.changes()
        assert await feed.poll() == set()
        await engine_on(one).run(an_event, "billing")
        seen = await poll_until(feed, {board_topic("billing")})
        assert board_topic("billing") in seen
        assert board_topic("sales") not in seen
    finally:
        await backend.close()
