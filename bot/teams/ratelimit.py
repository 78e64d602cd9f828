"""Sliding-window pacing limiter for the Teams per-conversation and per-tenant limits."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from bot.teams.clock import Clock

if TYPE_CHECKING:
    from bot.teams.fleet_pacing import SharedWindows

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


class Priority(IntEnum):
    """Who goes first when the tenant budget is the bottleneck (lower first)."""

    HIGH = 0  # invitations, accept and end of a session on the agent's card
    NORMAL = 1  # everything not marked: chat creation, member lookups, chat headers
    LOW = 2  # relayed chat lines, cosmetic card refreshes


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

    def set_limits(self, limits: Sequence[int]) -> None:
        """Change each window's limit (same order), keeping the lengths and the logs."""
        self._windows = tuple((max(1, limit), length)
                              for limit, (_, length) in zip(limits, self._windows, strict=True))

    def recent(self, key: str) -> list[float]:
        """The times logged for ``key`` (oldest first)."""
        return list(self._logs.get(key, ()))

    def keys(self) -> list[str]:
        return list(self._logs)

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


class _PriorityGate:
    """One holder at a time; waiters are let in by (priority, rank): FIFO within a priority."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []

    def locked(self) -> bool:
        return self._held or bool(self._waiting)

    async def enter(self, priority: int, rank: int) -> None:
        if not self.locked():
            self._held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, rank, turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.leave()  # let in, then cancelled: pass the turn on
            raise

    def leave(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)
                return
        self._held = False


class RateLimiter:
    """Paces calls so that each bucket key and the shared tenant bucket stay within policy.

    ``acquire(key)`` waits (on the injected clock) until both the key's windows and the
    tenant windows have room, then takes one slot of each. ``key=None`` takes a tenant slot
    only. Waiters for the tenant bucket are served by priority, first come, first served
    within one. Every window length is multiplied by ``time_scale`` (tests use e.g. 0.02 to run
    real limit counts fast) and by ``1 + headroom``: the service starts its windows when
    requests arrive, and uneven network latency can squeeze requests paced exactly at the
    limit into one of its windows; a headroom of a few percent (e.g. 0.05) avoids most of
    those 429s for that much throughput.

    In a fleet (``bot.teams.fleet_pacing``) the tenant windows hold this instance's share
    (``set_tenant_share``) and, while ``shared`` is active, each key's windows are also kept
    through the store: a call waits for a slot reserved there before it queues for the tenant.
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
        self.policy = policy
        self._per_key = SlidingWindows(policy.per_key, time_scale=time_scale, headroom=headroom)
        self._tenant = SlidingWindows(policy.tenant, time_scale=time_scale, headroom=headroom)
        self._tenant_queue = _PriorityGate()
        self._ranks = itertools.count()
        self.time_scale = time_scale
        self.headroom = headroom
        self.shared: SharedWindows | None = None
        self._joining = False  # joining a fleet: no call goes out yet
        self.hold_poll = 0.05  # seconds between looks while held

    @property
    def key_windows(self) -> tuple[tuple[int, float], ...]:
        """Each key's (limit, scaled length) windows."""
        return self._per_key.windows

    @property
    def tenant_windows(self) -> tuple[tuple[int, float], ...]:
        """The tenant (limit, scaled length) windows as this instance applies them now."""
        return self._tenant.windows

    def set_tenant_share(self, live: int, *, joining: bool = False) -> None:
        """Take an equal share of each tenant limit with ``live`` instances (at least 1 per
        window); ``joining``: the others may not count this instance yet (and use all of the
        budget), so send nothing until told otherwise."""
        from bot.services.fleet import tenant_share

        self._tenant.set_limits([tenant_share(w.limit, live) for w in self.policy.tenant])
        self._joining = joining

    def recent(self, key: str) -> list[float]:
        """This instance's own recent sends for ``key``, on the limiter's clock."""
        return self._per_key.recent(key)

    def tracked_keys(self) -> list[str]:
        """The keys with sends inside their longest window."""
        return self._per_key.keys()

    def delay(self, key: str | None) -> float:
        """Seconds until a call for ``key`` could go out (0.0 if now)."""
        now = self._clock.now()
        wait = self._tenant.delay(TENANT_BUCKET, now)
        if self._joining:
            wait = max(wait, self.hold_poll)
        if key is not None:
            wait = max(wait, self._per_key.delay(key, now))
        return wait

    def try_acquire(self, key: str | None) -> bool:
        """Take a slot for ``key`` if one is free right now, without waiting (local windows
        only: not while the fleet shares the key's windows)."""
        if self._tenant_queue.locked() or self.delay(key) > 0:
            return False
        if key is not None and self.shared is not None and self.shared.active:
            return False
        self._take(key, self._clock.now())
        return True

    async def acquire(self, key: str | None, priority: int = Priority.NORMAL, *,
                      run: int = 1) -> float:
        """Wait for and take a slot for ``key``; return the seconds waited. ``run``: how many
        calls for ``key`` wait in line, this one first (a fleet reserves them in one go)."""
        start = self._clock.now()
        rank = next(self._ranks)
        if key is not None:
            # Wait for the key's own windows outside the tenant queue, so a throttled
            # conversation never holds up the others.
            while (wait := self._per_key.delay(key, self._clock.now())) > 0:
                await self._clock.sleep(wait)
        shared = self.shared if key is not None and self.shared is not None \
            and self.shared.active else None
        slot = await shared.slot(key, run) if shared is not None and key is not None else None
        while True:
            if slot is not None and (wait := slot - self._clock.now()) > 0:
                await self._clock.sleep(wait)
            await self._tenant_queue.enter(priority, rank)
            try:
                while (wait := self.delay(key)) > 0:
                    await self._clock.sleep(wait)
                now = self._clock.now()
                if slot is None or shared is None or shared.in_time(slot, now):
                    self._take(key, now)
                    return now - start
            finally:
                self._tenant_queue.leave()
            # The tenant queue held it past its reserved slot: give the slot back, take a
            # new one (keeping its place in the tenant queue).
            assert key is not None and shared is not None
            slot = await shared.missed(key, slot, run)

    def _take(self, key: str | None, now: float) -> None:
        self._tenant.record(TENANT_BUCKET, now)
        if key is not None:
            self._per_key.record(key, now)
