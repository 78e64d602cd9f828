"""Local stand-ins (connector.py, graph.py, fixtures.py) and a fake monotonic clock."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class FakeMonotonicClock:
    """A ``bot.teams.clock.Clock`` whose time moves only when the test says so.

    ``sleep`` parks the caller until the clock reaches its deadline. ``advance(seconds)``
    moves time deadline by deadline, letting woken tasks run in between. ``run(awaitable)``
    drives an awaitable to completion, jumping straight to the next deadline whenever every
    task is waiting on the clock, so hours of pacing take milliseconds. ``sleeps`` records
    every requested sleep.
    """

    def __init__(self, start: float = 1000.0, *, settle_rounds: int = 30) -> None:
        self._now = start
        self._settle_rounds = settle_rounds
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        """Tasks currently parked in ``sleep``."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    def next_deadline(self) -> float | None:
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    async def settle(self) -> None:
        """Let every runnable task run until it waits again."""
        for _ in range(self._settle_rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers in deadline order."""
        target = self._now + seconds
        await self.settle()
        while (deadline := self.next_deadline()) is not None and deadline <= target:
            self._wake_until(deadline)
            await self.settle()
        self._now = max(self._now, target)
        await self.settle()

    async def run(self, awaitable: Awaitable[T], *, limit: float = 10_000_000.0) -> T:
        """Drive ``awaitable`` to completion on fake time (at most ``limit`` seconds of it)."""
        task: asyncio.Future[T] = asyncio.ensure_future(awaitable)
        end = self._now + limit
        try:
            while True:
                await self.settle()
                if task.done():
                    return task.result()
                deadline = self.next_deadline()
                if deadline is None:
                    raise RuntimeError("deadlock: nothing is sleeping on the fake clock")
                if deadline > end:
                    raise RuntimeError(f"still running after {limit} fake seconds")
                self._wake_until(deadline)
        finally:
            if not task.done():
                task.cancel()

    def _wake_until(self, deadline: float) -> None:
        self._now = max(self._now, deadline)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
