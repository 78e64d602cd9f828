"""Keeps the Teams limits for the whole fleet: heartbeats, tenant shares, shared send slots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable

from bot.services.fleet import FleetStore, SendLog, plan_slots
from bot.services.ports import ConflictError, StoreUnavailable
from bot.teams.clock import Clock
from bot.teams.ratelimit import RateLimiter

log = logging.getLogger(__name__)

HEARTBEAT = 2.0  # seconds between an instance's heartbeats
LIVE_BEATS = 3  # an instance not seen for this many heartbeats counts as gone
JOIN_BEATS = 2  # heartbeats a new instance sends nothing for (the others may not see it yet)
RESERVE_ATTEMPTS = 8
# A call may leave this long (times the limiter's time scale) after its reserved slot: the
# shared windows are that much longer, so sends a little late still keep the limits.
SLOT_TOLERANCE = 0.1


class SharedWindows:
    """Per-conversation windows kept through the store while more than one instance is live.

    A conversation's send log (`bot.services.fleet.SendLog`) holds the slots every instance
    took; an instance reserves the next slots for the whole run of calls it has waiting for
    the conversation with one conditional write, then hands them out one by one. A call the
    tenant queue held past its slot gives it back (with the rest of the run) and reserves
    again. Store trouble falls back to this instance's own windows (a 429 is retried)."""

    def __init__(self, store: FleetStore, limiter: RateLimiter, clock: Clock, *,
                 wall: Callable[[], float] = time.time,
                 tolerance: float = SLOT_TOLERANCE) -> None:
        self._store = store
        self._limiter = limiter
        self._clock = clock
        self._wall = wall
        self.tolerance = tolerance * limiter.time_scale
        self.windows = tuple((limit, length + self.tolerance)
                             for limit, length in limiter.key_windows)
        self.active = False
        self._reserved: dict[str, deque[float]] = {}  # wall times reserved and not used yet
        self._current: dict[str, float] = {}  # the wall time of the slot handed out last
        self._local: dict[str, list[float]] = {}  # own sends from before the fleet shared
        self.writes = 0
        self.conflicts = 0

    def set_active(self, active: bool) -> None:
        if active == self.active:
            return
        self.active = active
        self._reserved.clear()
        self._current.clear()
        self._local.clear()
        if active:
            # Sends made alone are in no store row yet: the first reservation adds them.
            offset = self._wall() - self._clock.now()
            for key in self._limiter.tracked_keys():
                self._local[key] = [t + offset for t in self._limiter.recent(key)]

    def _on_clock(self, wall_time: float) -> float:
        return self._clock.now() + (wall_time - self._wall())

    def in_time(self, slot: float, now: float) -> bool:
        return now - slot <= self.tolerance

    async def slot(self, key: str, run: int) -> float | None:
        """The limiter-clock time the next call for `key` may go; None: use local windows."""
        queued = self._reserved.get(key)
        if queued:
            self._current[key] = queued.popleft()
            return self._on_clock(self._current[key])
        return await self._reserve(key, run, [])

    async def missed(self, key: str, slot: float, run: int) -> float | None:
        """The call missed `slot`: return it and the rest of the run, reserve afresh."""
        drop = [self._current.pop(key, slot), *self._reserved.pop(key, ())]
        return await self._reserve(key, run, drop)

    async def _reserve(self, key: str, count: int, drop: list[float]) -> float | None:
        try:
            for _ in range(RESERVE_ATTEMPTS):
                stored = await self._store.read_sendlog(key) or SendLog()
                now = self._wall()
                slots = plan_slots(stored, now, max(1, count), self.windows, drop=drop,
                                   merge=self._local.get(key, ()))
                if await self._store.write_sendlog(key, stored, now):
                    self.writes += 1
                    self._local.pop(key, None)
                    self._current[key] = slots[0]
                    self._reserved[key] = deque(slots[1:])
                    return self._on_clock(slots[0])
                self.conflicts += 1
                await asyncio.sleep(random.uniform(0, 0.005))
        except (StoreUnavailable, ConflictError) as exc:
            log.warning("shared send slots unavailable", extra={"error": type(exc).__name__})
            return None
        log.warning("shared send slots kept changing; pacing locally")
        return None


class FleetMembership:
    """This instance's heartbeat, and what it says: the tenant share and whether the
    conversation windows are shared (more than one live instance)."""

    def __init__(self, store: FleetStore, limiter: RateLimiter, shared: SharedWindows, *,
                 instance_id: str | None = None, wall: Callable[[], float] = time.time,
                 heartbeat: float = HEARTBEAT) -> None:
        self.store = store
        self.limiter = limiter
        self.shared = shared
        self.instance_id = instance_id or uuid.uuid4().hex
        self._wall = wall
        self.heartbeat = heartbeat
        self.live = 1
        self.beats = 0
        self._joining = False

    async def beat(self) -> int:
        """One heartbeat: record it, count the live instances, set share and sharing."""
        ids = await self.store.heartbeat(self.instance_id, self._wall(),
                                         LIVE_BEATS * self.heartbeat)
        live = max(1, len(set(ids) | {self.instance_id}))
        if self.beats == 0:
            # Alone at the first beat: the whole budget at once. Others live: they learn of
            # this instance at their next beats and may use the whole budget until then.
            self._joining = live > 1
        elif self.beats >= JOIN_BEATS:
            self._joining = False
        self.beats += 1
        self.live = live
        self.limiter.set_tenant_share(live, joining=self._joining)
        self.shared.set_active(live > 1)
        return live

    async def run(self) -> None:
        """Beat until cancelled; a failed beat keeps the last share (it never grows unseen)."""
        while True:
            try:
                await self.beat()
            except (StoreUnavailable, ConflictError) as exc:
                log.warning("fleet heartbeat failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.heartbeat)

    async def leave(self) -> None:
        with contextlib.suppress(StoreUnavailable, ConflictError):
            await self.store.leave(self.instance_id)
