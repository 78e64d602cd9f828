"""Sliding-window pacing limiter for the Teams per-conversation and per-tenant limits."""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from bot.teams.clock import Clock

# Entries this close to the edge of a window count as already out of it, so that sleeping
# exactly the computed delay always frees the slot despite float rounding.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` events in any interval of ``seconds``."""

    limit: int
    seconds: float

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"window limit must be at least 1, got {self.limit}")
        if self.seconds <= 0:
            raise ValueError(f"window length must be positive, got {self.seconds}")


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """Windows applied to each bucket key, and windows shared by every call (the tenant)."""

    per_key: tuple[Window, ...]
    tenant: tuple[Window, ...]


# Teams: "send to a conversation" per bot per conversation, and 50 RPS per app per tenant.
TEAMS_CONVERSATION_WINDOWS: tuple[Window, ...] = (
    Window(7, 1.0),
    Window(8, 2.0),
    Window(60, 30.0),
    Window(1800, 3600.0),
)
TEAMS_TENANT_WINDOWS: tuple[Window, ...] = (Window(50, 1.0),)
TEAMS_POLICY = RatePolicy(per_key=TEAMS_CONVERSATION_WINDOWS, tenant=TEAMS_TENANT_WINDOWS)

TENANT_BUCKET = "*tenant*"


class SlidingWindows:
    """Event logs of many keys, each checked against the same list of sliding windows."""

    def __init__(
        self, windows: Sequence[Window], *, time_scale: float = 1.0, headroom: float = 0.0
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        if headroom < 0:
            raise ValueError(f"headroom must not be negative, got {headroom}")
        stretch = time_scale * (1.0 + headroom)
        self._windows = tuple((w.limit, w.seconds * stretch) for w in windows)
        self._horizon = max((length for _, length in self._windows), default=0.0)
        self._logs: dict[str, deque[float]] = {}
        self._last_sweep = float("-inf")

    @property
    def windows(self) -> tuple[tuple[int, float], ...]:
        """The (limit, scaled length in seconds) pairs enforced."""
        return self._windows

    def __len__(self) -> int:
        return len(self._logs)

    def delay(self, key: str, now: float) -> float:
        """Seconds from ``now`` until ``key`` may record one more event (0.0 if it may now)."""
        log = self._logs.get(key)
        if not log:
            return 0.0
        wait = 0.0
        for limit, length in self._windows:
            first = bisect_right(log, now - length + _EPSILON)
            count = len(log) - first
            if count >= limit:
                # The oldest entries must leave the window until only limit - 1 remain.
                wait = max(wait, log[first + count - limit] + length - now)
        return wait

    def record(self, key: str, now: float) -> None:
        """Log one event for ``key`` at ``now`` (does not check the limits)."""
        if not self._windows:
            return
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = deque()
        log.append(now)
        cutoff = now - self._horizon + _EPSILON
        while log and log[0] <= cutoff:
            log.popleft()
        if now - self._last_sweep >= self._horizon:
            self.forget_idle(now)

    def forget_idle(self, now: float) -> None:
        """Drop keys with no event inside the longest window."""
        self._last_sweep = now
        cutoff = now - self._horizon + _EPSILON
        idle = [key for key, log in self._logs.items() if not log or log[-1] <= cutoff]
        for key in idle:
            del self._logs[key]


class RateLimiter:
    """Paces calls so that each bucket key and the shared tenant bucket stay within policy.

    ``acquire(key)`` waits (on the injected clock) until both the key's windows and the
    tenant windows have room, then takes one slot of each. ``key=None`` takes a tenant slot
    only. Waiters for the tenant bucket are served first come, first served. Every window
    length is multiplied by ``time_scale`` (tests use e.g. 0.02 to run real limit counts fast)
    and by ``1 + headroom``: the service starts its windows when requests arrive, and uneven
    network latency can squeeze requests paced exactly at the limit into one of its windows;
    a headroom of a few percent (e.g. 0.05) avoids most of those 429s for that much throughput.
    """

    def __init__(
        self,
        clock: Clock,
        policy: RatePolicy = TEAMS_POLICY,
        *,
        time_scale: float = 1.0,
        headroom: float = 0.0,
    ) -> None:
        self._clock = clock
        self._per_key = SlidingWindows(policy.per_key, time_scale=time_scale, headroom=headroom)
        self._tenant = SlidingWindows(policy.tenant, time_scale=time_scale, headroom=headroom)
        self._tenant_queue = asyncio.Lock()
        self.time_scale = time_scale

    def delay(self, key: str | None) -> float:
        """Seconds until a call for ``key`` could go out (0.0 if now)."""
        now = self._clock.now()
        wait = self._tenant.delay(TENANT_BUCKET, now)
        if key is not None:
            wait = max(wait, self._per_key.delay(key, now))
        return wait

    def try_acquire(self, key: str | None) -> bool:
        """Take a slot for ``key`` if one is free right now, without waiting."""
        if self._tenant_queue.locked() or self.delay(key) > 0:
            return False
        self._take(key, self._clock.now())
        return True

    async def acquire(self, key: str | None) -> float:
        """Wait for and take a slot for ``key``; return the seconds waited."""
        start = self._clock.now()
        if key is not None:
            # Wait for the key's own windows outside the tenant queue, so a throttled
            # conversation never holds up the others.
            while (wait := self._per_key.delay(key, self._clock.now())) > 0:
                await self._clock.sleep(wait)
        async with self._tenant_queue:
            while (wait := self.delay(key)) > 0:
                await self._clock.sleep(wait)
            now = self._clock.now()
            self._take(key, now)
        return now - start

    def _take(self, key: str | None, now: float) -> None:
        self._tenant.record(TENANT_BUCKET, now)
        if key is not None:
            self._per_key.record(key, now)
