"""Fleet-wide Teams limits: tenant shares, the instance registry, shared send slots (SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from bot.services.fleet import SendLog, plan_slots, tenant_share
from bot.storage.sqlite import SqliteStore
from bot.storage.sqlite_fleet import SqliteFleet
from bot.teams.fleet_pacing import JOIN_BEATS, LIVE_BEATS, FleetMembership, SharedWindows
from bot.teams.ratelimit import (
    TEAMS_CONVERSATION_WINDOWS,
    Priority,
    RateLimiter,
    RatePolicy,
    Window,
)
from tests.standins import FakeMonotonicClock

WINDOWS = tuple((w.limit, w.seconds) for w in TEAMS_CONVERSATION_WINDOWS)
T0 = 1_800_000_000.0  # wall-clock seconds


class Wall:
    """A wall clock the test moves (the fleet stores wall-clock seconds)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def assert_within(times: Sequence[float], windows: Sequence[tuple[int, float]]) -> None:
    ordered = sorted(times)
    for limit, length in windows:
        for first, last in zip(ordered, ordered[limit:], strict=False):
            assert last - first >= length - 1e-9, (limit, length, first, last)


@pytest.mark.parametrize(("limit", "live", "share"), [
    (50, 1, 50), (50, 2, 22), (50, 3, 15), (50, 7, 6), (50, 50, 1), (50, 80, 1), (50, 0, 50),
    (1, 4, 1),
])
def test_tenant_share_is_all_alone_else_an_equal_split_of_90_percent_at_least_one(
        limit: int, live: int, share: int) -> None:
    assert tenant_share(limit, live) == share


def test_slots_keep_every_window_and_stay_in_order() -> None:
    log = SendLog()
    slots = plan_slots(log, T0, 100, WINDOWS)
    assert slots == sorted(slots)
    assert slots[:7] == pytest.approx([T0 + i * 1e-6 for i in range(7)])
    assert slots[7] == pytest.approx(T0 + 1.0)  # the 8th waits for the 1 s window
    assert_within(slots, WINDOWS)
    assert slots[60] >= T0 + 30.0  # 60 per 30 s


def test_a_second_planner_continues_after_the_first_ones_slots() -> None:
    log = SendLog()
    mine = plan_slots(log, T0, 5, WINDOWS)
    theirs = plan_slots(log, T0 + 0.1, 5, WINDOWS)
    assert min(theirs) > max(mine)
    assert_within(mine + theirs, WINDOWS)
    assert theirs[2] >= mine[0] + 1.0  # the 8th send in the conversation


def test_given_back_slots_free_their_room() -> None:
    log = SendLog()
    slots = plan_slots(log, T0, 7, WINDOWS)
    later = plan_slots(SendLog(times=list(log.times), buckets=[list(b) for b in log.buckets]),
                       T0, 1, WINDOWS)
    assert later[0] >= T0 + 1.0
    again = plan_slots(log, T0, 1, WINDOWS, drop=slots[3:])
    assert again[0] < T0 + 0.01  # four slots were returned: room right away


def test_sends_made_alone_count_once_the_fleet_shares() -> None:
    merged = plan_slots(SendLog(), T0, 1, WINDOWS, merge=[T0 - 0.5 + i * 0.01 for i in range(7)])
    assert merged[0] >= T0 + 0.5


def test_the_hourly_window_is_kept_in_buckets() -> None:
    windows = ((2, 1.0), (1800, 3600.0))
    log = SendLog()
    slots = plan_slots(log, T0, 1800, windows)
    assert len(log.buckets) <= 61
    assert len(log.times) <= 2
    nxt = plan_slots(log, T0 + 1000, 1, windows)[0]
    assert nxt >= slots[0] + 3600.0  # the hour must pass before the 1,801st send


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """Two instances' connections on one SQLite file."""
    first = await SqliteStore(tmp_path / "fleet.db").open()
    second = await SqliteStore(tmp_path / "fleet.db").open()
    yield first, second
    await first.close()
    await second.close()


async def test_heartbeats_count_live_instances_and_drop_the_silent(
        stores: tuple[SqliteStore, SqliteStore]) -> None:
    a, b = SqliteFleet(stores[0]), SqliteFleet(stores[1])
    assert await a.heartbeat("a", T0, 6.0) == ["a"]
    assert await b.heartbeat("b", T0 + 1, 6.0) == ["a", "b"]
    assert await a.heartbeat("a", T0 + 6.5, 6.0) == ["a", "b"]
    assert await a.heartbeat("a", T0 + 7.5, 6.0) == ["a"]  # b silent for 6.5 s
    await b.heartbeat("b", T0 + 8, 6.0)
    await b.leave("b")
    assert await a.heartbeat("a", T0 + 8.5, 6.0) == ["a"]


async def test_a_send_log_write_loses_to_a_newer_one(
        stores: tuple[SqliteStore, SqliteStore]) -> None:
    a, b = SqliteFleet(stores[0]), SqliteFleet(stores[1])
    assert await a.read_sendlog("conv") is None
    assert await a.write_sendlog("conv", SendLog(times=[T0]), T0)
    assert not await b.write_sendlog("conv", SendLog(times=[T0 + 1]), T0)  # both thought new
    seen_a = await a.read_sendlog("conv")
    seen_b = await b.read_sendlog("conv")
    assert seen_a is not None and seen_b is not None and seen_a.version == 1
    seen_b.times.append(T0 + 2)
    assert await b.write_sendlog("conv", seen_b, T0)
    seen_a.times.append(T0 + 3)
    assert not await a.write_sendlog("conv", seen_a, T0)  # read before b's write
    final = await a.read_sendlog("conv")
    assert final is not None and final.times == [T0, T0 + 2] and final.version == 2


def shared(store: SqliteStore, clock: FakeMonotonicClock, wall: Wall,
           ) -> tuple[RateLimiter, SharedWindows]:
    limiter = RateLimiter(clock)
    windows = SharedWindows(SqliteFleet(store), limiter, clock, wall=wall, tolerance=0.0)
    windows.set_active(True)
    limiter.shared = windows
    return limiter, windows


async def test_two_instances_reserve_slots_that_together_keep_the_windows(
        stores: tuple[SqliteStore, SqliteStore]) -> None:
    clock, wall = FakeMonotonicClock(start=0.0), Wall()
    _, one = shared(stores[0], clock, wall)
    _, two = shared(stores[1], clock, wall)
    taken: list[float] = []
    # A run of 10 queued calls costs one write; the other instance's 10 go after them.
    taken.append(await one.slot("conv", 10) or 0.0)
    assert one.writes == 1
    taken.append(await two.slot("conv", 10) or 0.0)
    for _ in range(9):
        taken.append(await one.slot("conv", 9) or 0.0)
        taken.append(await two.slot("conv", 9) or 0.0)
    assert (one.writes, two.writes) == (1, 1)
    assert_within([t + T0 for t in taken], WINDOWS)
    assert max(taken) >= 2.0  # 20 sends in one conversation need at least 2 s (8 per 2 s)


async def test_racing_reservations_never_hand_out_one_slot_twice(
        stores: tuple[SqliteStore, SqliteStore]) -> None:
    clock, wall = FakeMonotonicClock(start=0.0), Wall()
    _, one = shared(stores[0], clock, wall)
    _, two = shared(stores[1], clock, wall)

    async def take(windows: SharedWindows, key: str) -> list[float]:
        got = []
        for _ in range(6):
            slot = await windows.slot(key, 1)  # a run of one: each call reserves
            got.append(-1.0 if slot is None else slot)
        return got

    results = await asyncio.gather(*(take(w, f"c{n}") for n in range(3) for w in (one, two)))
    for n in range(3):
        both = results[2 * n] + results[2 * n + 1]
        assert -1.0 not in both
        assert len(set(both)) == 12
        assert_within([t + T0 for t in both], WINDOWS)
    stored = await SqliteFleet(stores[0]).read_sendlog("c0")
    assert stored is not None and len(stored.times) == 12


async def test_a_missed_slot_is_given_back_with_the_rest_of_the_run(
        stores: tuple[SqliteStore, SqliteStore]) -> None:
    clock, wall = FakeMonotonicClock(start=0.0), Wall()
    _, one = shared(stores[0], clock, wall)
    first = await one.slot("conv", 7)
    assert first == pytest.approx(0.0)
    wall.now += 0.5
    clock._now += 0.5
    again = await one.missed("conv", first or 0.0, 7)
    assert again == pytest.approx(0.5)  # all 7 returned: the conversation is free
    stored = await SqliteFleet(stores[0]).read_sendlog("conv")
    assert stored is not None and len(stored.times) == 7
    assert min(stored.times) == pytest.approx(T0 + 0.5)


async def test_membership_shares_the_tenant_budget_as_instances_come_and_go(
        stores: tuple[SqliteStore, SqliteStore]) -> None:
    wall = Wall()
    clock = FakeMonotonicClock(start=0.0)
    la, wa = shared(stores[0], clock, wall)
    lb, wb = shared(stores[1], clock, wall)
    wa.set_active(False)
    wb.set_active(False)
    a = FleetMembership(SqliteFleet(stores[0]), la, wa, instance_id="a", wall=wall,
                        heartbeat=2.0)
    b = FleetMembership(SqliteFleet(stores[1]), lb, wb, instance_id="b", wall=wall,
                        heartbeat=2.0)
    assert await a.beat() == 1
    assert la.tenant_windows[0][0] == 50 and not wa.active  # alone: all of it, no store
    wall.now += 0.5
    assert await b.beat() == 2
    # Joining: a has not seen b yet and may use all 50, so b sends nothing for now.
    assert lb.delay(None) > 0 and wb.active
    for _ in range(JOIN_BEATS):
        wall.now += 2.0
        await a.beat()
        await b.beat()
    assert la.tenant_windows[0][0] == 22 and lb.tenant_windows[0][0] == 22
    assert lb.delay(None) == 0
    assert wa.active and wb.active
    # b dies: after LIVE_BEATS heartbeats without it, a takes the whole budget back.
    wall.now += LIVE_BEATS * 2.0 + 0.1
    assert await a.beat() == 1
    assert la.tenant_windows[0][0] == 50 and not wa.active


async def test_a_single_instance_writes_nothing_per_send(
        stores: tuple[SqliteStore, SqliteStore]) -> None:
    clock, wall = FakeMonotonicClock(), Wall()
    limiter, windows = shared(stores[0], clock, wall)
    membership = FleetMembership(SqliteFleet(stores[0]), limiter, windows, instance_id="solo",
                                 wall=wall)
    await membership.beat()

    async def burst() -> None:
        for n in range(20):
            await limiter.acquire(f"c{n % 3}")

    await clock.run(burst())
    assert windows.writes == 0
    assert await SqliteFleet(stores[0]).read_sendlog("c0") is None


async def test_the_tenant_queue_lets_high_priority_calls_go_first() -> None:
    clock = FakeMonotonicClock()
    policy = RatePolicy(per_key=(Window(100, 1.0),), tenant=(Window(2, 1.0),))
    limiter = RateLimiter(clock, policy)
    order: list[str] = []

    async def call(name: str, priority: Priority, delay: float) -> None:
        await clock.sleep(delay)
        await limiter.acquire(name, priority)
        order.append(name)

    async def scenario() -> None:
        lows = [call(f"relay{n}", Priority.LOW, 0.0) for n in range(8)]
        await asyncio.gather(*lows, call("invite", Priority.HIGH, 0.1),
                             call("header", Priority.NORMAL, 0.1))

    await clock.run(scenario())
    # Two per second: relay0 and relay1 go at once, relay2 holds the queue for the next
    # second; the invitation arrived later than all relays but overtakes the waiting ones.
    assert order[:5] == ["relay0", "relay1", "relay2", "invite", "header"]
    assert order[5:] == [f"relay{n}" for n in range(3, 8)]
