"""bot.interact.limits: fixed windows per key, each instance taking its share of the fleet's."""

from __future__ import annotations

from bot.interact.limits import WindowLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gets_the_limit_per_window_then_waits_for_the_next() -> None:
    clock = Clock()
    limiter = WindowLimiter(3, 10.0, clock=clock)
    assert [limiter.hit("ip") for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 4
    assert limiter.hit("ip") == 6.0  # refused: six seconds until the window resets
    assert limiter.hit("other") == 0.0  # each key its own
    clock.now += 6
    assert limiter.hit("ip") == 0.0


def test_each_instance_allows_its_share_of_the_fleets_limit() -> None:
    live = [3]
    limiter = WindowLimiter(120, 60.0, clock=Clock(), fleet_size=lambda: live[0])
    allowed = sum(limiter.hit("ip") == 0.0 for _ in range(200))
    assert allowed == 40
    live[0] = 1  # the others left: the whole limit again
    assert sum(limiter.hit("ip") == 0.0 for _ in range(200)) == 80


def test_a_share_never_rounds_up_past_the_limit_nor_down_to_nothing() -> None:
    assert WindowLimiter(20, 10.0, fleet_size=lambda: 3).share == 6  # 18 for three, not 21
    assert WindowLimiter(2, 10.0, fleet_size=lambda: 5).share == 1
    assert WindowLimiter(2, 10.0, fleet_size=lambda: 0).share == 2
