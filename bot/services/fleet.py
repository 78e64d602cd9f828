"""Fleet-wide send limits: the instance registry, tenant shares and shared per-key send logs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# Windows with more room than this are counted in buckets (an hour of 1,800 sends would
# otherwise be 1,800 times in one small row); the short ones keep exact times.
EXACT_LIMIT = 100
BUCKETS_PER_WINDOW = 60


@dataclass
class SendLog:
    """What one conversation's senders across the fleet have used or reserved, in wall-clock
    seconds: the most recent times exactly, and long windows as counts per bucket."""

    times: list[float] = field(default_factory=list)
    buckets: list[list[float]] = field(default_factory=list)  # [bucket start, count], oldest first
    version: int = 0  # the store's, for the conditional write (an ETag on Cosmos DB)
    etag: str = ""


class FleetStore(Protocol):
    """The store side: a heartbeat row per instance and a small send log per conversation.
    Outside use-case units of work; every write is one conditional write of one row."""

    async def heartbeat(self, instance_id: str, now: float, live_for: float) -> list[str]:
        """Record that `instance_id` is alive at `now` (wall seconds); return the ids of the
        instances seen within `live_for` seconds (this one included)."""
    async def leave(self, instance_id: str) -> None:
        """Drop this instance's row (a clean shutdown: the others take its share at once)."""
    async def read_sendlog(self, key: str) -> SendLog | None: ...
    async def write_sendlog(self, key: str, log: SendLog, now: float) -> bool:
        """Write `log` if the stored one is still the version read (`log.version`/`etag`; a
        new row if 0/""); False when another instance wrote first. Bumps `log.version`."""


# With several instances, each paces its own calls: the arrivals of their calls at Teams
# jitter against each other (scheduling, the network), and a window can see a few more than
# the shares add up to. A tenth of the limit is kept back for that.
FLEET_MARGIN = 0.9


def tenant_share(limit: int, live: int) -> int:
    """This instance's part of a fleet-wide limit: all of it alone; with others an equal
    split of 90 % of it, rounded down, at least 1."""
    if live <= 1:
        return limit
    return max(1, int(limit * FLEET_MARGIN) // live)


def _bucket_length(seconds: float) -> float:
    return seconds / BUCKETS_PER_WINDOW


def plan_slots(log: SendLog, now: float, count: int,
               windows: Sequence[tuple[int, float]], *, drop: Iterable[float] = (),
               merge: Iterable[float] = ()) -> list[float]:
    """Reserve `count` send times for a conversation, in `log` (changed in place): each as
    early as every window allows, never before `now` nor before a time already in the log (so
    sends stay in order across instances). `drop` are reservations given back (never used);
    `merge` are sends this instance made that the log may not hold yet (taken before the
    fleet had a second instance)."""
    short = [(limit, length) for limit, length in windows if limit <= EXACT_LIMIT]
    long = [(limit, length) for limit, length in windows if limit > EXACT_LIMIT]
    dropped = set(drop)
    times = sorted({t for t in log.times if t not in dropped} | set(merge))
    buckets = {b: int(n) for b, n in log.buckets}
    if long:
        size = _bucket_length(max(length for _, length in long))
        for t in dropped & set(log.times):
            key = float(t // size * size)
            if buckets.get(key, 0) > 0:
                buckets[key] -= 1
    slots: list[float] = []
    for _ in range(count):
        t = max(now, times[-1] + 1e-6) if times else now
        for limit, length in short:
            if len(times) >= limit:
                t = max(t, times[-limit] + length)
        for limit, length in long:
            size = _bucket_length(length)
            # A bucket counts while any of it is inside the window ending at t (errs high).
            while True:
                inside = sorted((b, n) for b, n in buckets.items() if b + size > t - length
                                and n > 0)
                if sum(n for _, n in inside) < limit:
                    break
                t = inside[0][0] + size + length
        times.append(t)
        slots.append(t)
        if long:
            size = _bucket_length(max(length for _, length in long))
            key = float(t // size * size)
            buckets[key] = buckets.get(key, 0) + 1
    keep = max((limit for limit, _ in short), default=0)
    horizon = max((length for _, length in short), default=0.0)
    log.times = [t for t in times[-keep:] if t > now - horizon] if keep else []
    if long:
        longest = max(length for _, length in long)
        size = _bucket_length(longest)
        log.buckets = [[b, float(n)] for b, n in sorted(buckets.items())
                       if n > 0 and b + size > now - longest]
    else:
        log.buckets = []
    return slots
