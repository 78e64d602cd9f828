"""The fleet store (instance registry, shared send logs) on SQLite and on Cosmos DB."""

from __future__ import annotations

from bot.services.fleet import FleetStore, SendLog
from bot.services.ports import Store
from bot.storage.fleet import fleet_store
from bot.teams.fleet_pacing import SharedWindows
from bot.teams.ratelimit import TEAMS_CONVERSATION_WINDOWS, RateLimiter
from tests.contract.conftest import Backend
from tests.standins import FakeMonotonicClock

T0 = 1_800_000_000.0
WINDOWS = [(w.limit, w.seconds) for w in TEAMS_CONVERSATION_WINDOWS]


async def two_instances(backend: Backend, store: Store) -> tuple[FleetStore, FleetStore]:
    """Two instances' stores (the `store` fixture closes every store the backend opened)."""
    first, second = fleet_store(store), fleet_store(await backend.open())
    assert first is not None and second is not None
    return first, second


async def test_heartbeats_and_leaving(backend: Backend, store: Store) -> None:
    a, b = await two_instances(backend, store)
    assert await a.heartbeat("a", T0, 6.0) == ["a"]
    assert await b.heartbeat("b", T0 + 1, 6.0) == ["a", "b"]
    assert await a.heartbeat("a", T0 + 7.5, 6.0) == ["a"]  # b silent for 6.5 s
    await b.heartbeat("b", T0 + 8, 6.0)
    await b.leave("b")
    await b.leave("b")  # twice is fine
    assert await a.heartbeat("a", T0 + 8.5, 6.0) == ["a"]


async def test_send_log_writes_are_conditional(backend: Backend, store: Store) -> None:
    a, b = await two_instances(backend, store)
    key = "19:chat/with?odd#chars@thread.v2"
    assert await a.read_sendlog(key) is None
    assert await a.write_sendlog(key, SendLog(times=[T0], buckets=[[T0, 1.0]]), T0)
    assert not await b.write_sendlog(key, SendLog(times=[T0 + 1]), T0)  # both thought it new
    seen_a, seen_b = await a.read_sendlog(key), await b.read_sendlog(key)
    assert seen_a is not None and seen_b is not None
    assert (seen_a.times, seen_a.buckets) == ([T0], [[T0, 1.0]])
    seen_b.times.append(T0 + 2)
    assert await b.write_sendlog(key, seen_b, T0)
    seen_a.times.append(T0 + 3)
    assert not await a.write_sendlog(key, seen_a, T0)  # read before b's write
    final = await b.read_sendlog(key)
    assert final is not None and final.times == [T0, T0 + 2]
    assert await b.write_sendlog(key, final, T0)  # its own write's version/ETag is current


async def test_two_instances_share_a_conversation_s_windows(backend: Backend, store: Store) -> None:
    clock = FakeMonotonicClock(start=0.0)
    stores = await two_instances(backend, store)
    shared = []
    for fleet in stores:
        windows = SharedWindows(fleet, RateLimiter(clock), clock, wall=lambda: T0,
                                tolerance=0.0)
        windows.set_active(True)
        shared.append(windows)
    taken = []
    for _ in range(8):
        for windows in shared:
            slot = await windows.slot("conv", 8)
            assert slot is not None
            taken.append(slot)
    assert [w.writes for w in shared] == [1, 1]  # a run of 8 costs one write each
    ordered = sorted(taken)
    for limit, length in WINDOWS:
        for first, last in zip(ordered, ordered[limit:], strict=False):
            assert last - first >= length - 1e-6
    assert ordered[-1] >= 2.0 * 1  # 16 sends need 8 per 2 s: at least 2 s
