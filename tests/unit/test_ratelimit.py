"""Sliding-window pacing on a fake clock: windows, key isolation, tenant bucket, time scale."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Sequence

import pytest

from bot.teams.ratelimit import (
    TEAMS_CONVERSATION_WINDOWS,
    TEAMS_POLICY,
    TEAMS_TENANT_WINDOWS,
    RateLimiter,
    RatePolicy,
    SlidingWindows,
    Window,
)
from tests.standins import FakeMonotonicClock

START = 1000.0


def assert_within(times: Sequence[float], windows: Sequence[Window], scale: float = 1.0) -> None:
    """No interval of any window's length holds more than its limit."""
    ordered = sorted(times)
    for window in windows:
        length = window.seconds * scale
        for first, last in zip(ordered, ordered[window.limit :], strict=False):
            assert last - first >= length - 1e-9, (window, first, last)


async def grants(
    limiter: RateLimiter, clock: FakeMonotonicClock, keys: Sequence[str | None]
) -> list[float]:
    """Acquire for each key one after another; return the offsets at which each was granted."""

    async def run() -> list[float]:
        granted = []
        for key in keys:
            await limiter.acquire(key)
            granted.append(clock.now() - START)
        return granted

    return await clock.run(run())


@pytest.fixture
def clock() -> FakeMonotonicClock:
    """Here the clock is the monotonic one the rate limiter reads (not tests/conftest.py's)."""
    return FakeMonotonicClock(START)


@pytest.fixture
def limiter(clock: FakeMonotonicClock) -> RateLimiter:
    """A limiter with Teams' limits."""
    return RateLimiter(clock)


def test_window_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Window(0, 1.0)
    with pytest.raises(ValueError):
        Window(1, 0.0)
    with pytest.raises(ValueError):
        SlidingWindows([Window(1, 1.0)], time_scale=0)


def test_teams_policy_table() -> None:
    assert [(w.limit, w.seconds) for w in TEAMS_CONVERSATION_WINDOWS] == [
        (7, 1.0),
        (8, 2.0),
        (60, 30.0),
        (1800, 3600.0),
    ]
    assert [(w.limit, w.seconds) for w in TEAMS_TENANT_WINDOWS] == [(50, 1.0)]


def test_sliding_windows_delay_is_time_until_oldest_leaves() -> None:
    windows = SlidingWindows([Window(7, 1.0)])
    for _ in range(7):
        windows.record("c", 10.0)
    assert windows.delay("c", 10.0) == pytest.approx(1.0)
    assert windows.delay("c", 10.4) == pytest.approx(0.6)
    assert windows.delay("c", 11.0) == 0.0
    assert windows.delay("other", 10.0) == 0.0


async def test_first_seven_go_at_once_then_eight_per_two_seconds(
        clock: FakeMonotonicClock, limiter: RateLimiter) -> None:
    times = await grants(limiter, clock, ["c"] * 16)
    assert times == [0.0] * 7 + [1.0] + [2.0] * 7 + [3.0]


async def test_sixty_per_thirty_seconds(clock: FakeMonotonicClock, limiter: RateLimiter) -> None:
    times = await grants(limiter, clock, ["c"] * 61)
    assert max(times[:60]) < 30.0
    assert times[60] == pytest.approx(30.0)
    assert_within(times, TEAMS_CONVERSATION_WINDOWS)


async def test_eighteen_hundred_per_hour(clock: FakeMonotonicClock, limiter: RateLimiter) -> None:
    times = await grants(limiter, clock, ["c"] * 1801)
    assert times[1799] < 3600.0
    assert times[1800] == pytest.approx(3600.0)
    assert_within(times, TEAMS_CONVERSATION_WINDOWS)


async def test_keys_are_isolated(clock: FakeMonotonicClock, limiter: RateLimiter) -> None:
    first = await grants(limiter, clock, ["a"] * 7)
    assert limiter.delay("a") == pytest.approx(1.0)
    assert limiter.delay("b") == 0.0
    second = await grants(limiter, clock, ["b"] * 7)
    assert first == second == [0.0] * 7


async def test_tenant_bucket_is_shared_by_all_keys(
        clock: FakeMonotonicClock, limiter: RateLimiter) -> None:
    granted: dict[str, float] = {}

    async def one(key: str) -> None:
        await limiter.acquire(key)
        granted[key] = clock.now() - START

    keys = [f"c{i:02d}" for i in range(60)]
    await clock.run(asyncio.gather(*(one(key) for key in keys)))
    assert [granted[key] for key in keys] == [0.0] * 50 + [1.0] * 10


async def test_tenant_waiters_are_served_in_arrival_order() -> None:
    clock = FakeMonotonicClock(START)
    limiter = RateLimiter(clock, RatePolicy(per_key=(), tenant=(Window(2, 1.0),)))
    order: list[int] = []

    async def one(number: int) -> None:
        await limiter.acquire(f"k{number}")
        order.append(number)

    await clock.run(asyncio.gather(*(one(n) for n in range(9))))
    assert order == list(range(9))


async def test_none_key_takes_only_a_tenant_slot(
        clock: FakeMonotonicClock, limiter: RateLimiter) -> None:
    times = await grants(limiter, clock, [None] * 51)
    assert times == [0.0] * 50 + [1.0]
    assert limiter.delay("fresh") == 0.0


async def test_throttled_key_does_not_hold_up_other_keys(
        clock: FakeMonotonicClock, limiter: RateLimiter) -> None:
    await grants(limiter, clock, ["busy"] * 7)
    done: list[str] = []

    async def one(key: str) -> None:
        await limiter.acquire(key)
        done.append(f"{key}@{clock.now() - START:g}")

    await clock.run(asyncio.gather(one("busy"), one("idle")))
    assert done == ["idle@0", "busy@1"]


async def test_try_acquire(clock: FakeMonotonicClock, limiter: RateLimiter) -> None:
    assert all(limiter.try_acquire("c") for _ in range(7))
    assert not limiter.try_acquire("c")
    await clock.advance(1.0)
    assert limiter.try_acquire("c")


async def test_time_scale_shrinks_every_window() -> None:
    clock = FakeMonotonicClock(START)
    limiter = RateLimiter(clock, time_scale=0.02)
    times = await grants(limiter, clock, ["c"] * 61)
    assert times[:16] == pytest.approx([0.0] * 7 + [0.02] + [0.04] * 7 + [0.06])
    assert times[60] == pytest.approx(0.6)
    assert_within(times, TEAMS_CONVERSATION_WINDOWS, scale=0.02)
    assert limiter.time_scale == 0.02


async def test_random_load_never_breaks_any_window() -> None:
    clock = FakeMonotonicClock(START)
    limiter = RateLimiter(clock, TEAMS_POLICY)
    rnd = random.Random(20261121)
    per_key: dict[str, list[float]] = defaultdict(list)
    everything: list[float] = []

    async def client(key: str, count: int) -> None:
        for _ in range(count):
            await clock.sleep(rnd.expovariate(4.0))
            await limiter.acquire(key)
            per_key[key].append(clock.now())
            everything.append(clock.now())

    jobs = [client(f"c{i}", rnd.randint(5, 80)) for i in range(40)]
    await clock.run(asyncio.gather(*jobs))
    for times in per_key.values():
        assert_within(times, TEAMS_CONVERSATION_WINDOWS)
    assert_within(everything, TEAMS_TENANT_WINDOWS)


async def test_idle_keys_are_forgotten() -> None:
    clock = FakeMonotonicClock(START)
    windows = SlidingWindows(TEAMS_CONVERSATION_WINDOWS)
    for i in range(100):
        windows.record(f"c{i}", clock.now())
    assert len(windows) == 100
    await clock.advance(3601.0)
    windows.record("late", clock.now())
    assert len(windows) == 1


async def test_headroom_stretches_every_window() -> None:
    clock = FakeMonotonicClock(START)
    limiter = RateLimiter(clock, time_scale=0.5, headroom=0.1)
    times = await grants(limiter, clock, ["c"] * 9)
    assert times == pytest.approx([0.0] * 7 + [0.55, 1.1])
    with pytest.raises(ValueError):
        RateLimiter(clock, headroom=-0.1)
