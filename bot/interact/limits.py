"""Fixed-window request counters per key (the client's address): a cheap guard against
floods, kept for the fleet by each instance taking its share."""

from __future__ import annotations

import time
from collections.abc import Callable


def alone() -> int:
    return 1


class WindowLimiter:
    """`limit` requests per key in each `window` seconds, for the whole fleet: an instance
    allows its share, the limit divided by the live instances `fleet_size` counts (a load
    balancer spreads one client over all of them)."""

    def __init__(self, limit: int, window: float, *,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 50_000,
                 fleet_size: Callable[[], int] = alone) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self.fleet_size = fleet_size
        self._counts: dict[str, tuple[float, int]] = {}

    @property
    def share(self) -> int:
        """What this instance allows a key in a window (at least one request)."""
        return max(1, self.limit // max(1, self.fleet_size()))

    def hit(self, key: str) -> float:
        """Count one request; 0 when allowed, else the seconds until the window resets."""
        now = self.clock()
        start, count = self._counts.get(key, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        if count >= self.share:
            return max(0.0, start + self.window - now)
        if len(self._counts) >= self.max_keys and key not in self._counts:
            self._prune(now)
        self._counts[key] = (start, count + 1)
        return 0.0

    def _prune(self, now: float) -> None:
        self._counts = {k: v for k, v in self._counts.items() if now - v[0] < self.window}
