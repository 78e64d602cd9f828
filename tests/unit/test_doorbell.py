"""The doorbell a chat's WebSocket stream waits on between pushes."""

from __future__ import annotations

import asyncio

from bot.interact.api import ChatHub


async def test_a_ring_before_the_wait_is_kept_until_cleared() -> None:
    hub = ChatHub()
    bell = hub.subscribe("c1")
    hub.notify({"c1"})
    await asyncio.wait_for(bell.wait(3600), 1)  # returns at once: it was rung
    bell.clear()
    waiting = asyncio.create_task(bell.wait(3600))
    await asyncio.sleep(0)
    assert not waiting.done()
    hub.notify({"c2"})  # another chat's commit does not wake it
    await asyncio.sleep(0)
    assert not waiting.done()
    hub.notify({"c1"})
    await asyncio.wait_for(waiting, 1)


async def test_the_wait_ends_by_its_timeout_and_leaves_no_timer_behind() -> None:
    hub = ChatHub()
    bell = hub.subscribe("c1")
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(bell.wait(0), 1)
    waiting = asyncio.create_task(bell.wait(3600))
    await asyncio.sleep(0)
    scheduled = len(loop._scheduled)  # type: ignore[attr-defined]
    bell.ring()
    await waiting
    # The hour-long timeout was cancelled (cancelled handles leave the heap lazily).
    assert all(h.cancelled() for h in loop._scheduled  # type: ignore[attr-defined]
               if h.when() > loop.time() + 60) and scheduled >= 1


async def test_an_unsubscribed_bell_is_not_rung() -> None:
    hub = ChatHub()
    bell = hub.subscribe("c1")
    hub.unsubscribe("c1", bell)
    hub.notify({"c1"})
    waiting = asyncio.create_task(bell.wait(3600))
    await asyncio.sleep(0)
    assert not waiting.done()
    waiting.cancel()
