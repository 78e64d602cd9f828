"""Runs use cases in units of work with conflict retries; its job runner fires timers and jobs."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from bot.domain.service import Catalog
from bot.domain.timers import Timer
from bot.services.context import Ctx
from bot.services.jobs import Jobs, Wiring
from bot.services.observe import Observer, SilentObserver, Watch
from bot.services.ports import Clock, ConflictError, Store

P = ParamSpec("P")
R = TypeVar("R")


class Engine:
    """The one door to the use cases: every call is a unit of work, retried on conflicts.

    `wiring` (bot/bootstrap.py builds it, from the engine when its effects need one) says
    which timers and jobs exist; `jobs` fires and runs them."""

    def __init__(self, store: Store, clock: Clock, catalog: Catalog,
                 wiring: Wiring | Callable[[Engine], Wiring] | None = None, *,
                 retries: int = 8, observer: Observer | None = None) -> None:
        self.store = store
        self.observer: Observer = observer or SilentObserver()
        self.clock = clock
        self.catalog = catalog
        self.retries = retries
        wired = wiring(self) if callable(wiring) else wiring or Wiring()
        # Called inside the unit of work of each event (bot.webhooks queues its requests).
        self._hooks = wired.event_hooks
        self._listeners = wired.listeners
        self._cards_delivered = wired.cards_delivered
        self.replies_enabled = wired.replies_enabled
        self.jobs = Jobs(self, wired)

    async def run(self, use_case: Callable[Concatenate[Ctx, P], Awaitable[R]],
                  *args: P.args, **kwargs: P.kwargs) -> R:
        # A use case that runs another (queries.acted) is watched under the one it runs.
        named = args[0] if args and callable(args[0]) else use_case
        with self.observer.unit_of_work(named) as watch:
            return await self._retrying(
                functools.partial(self.run_once, use_case, *args, **kwargs), watch)

    async def run_durably(self, use_case: Callable[Concatenate[Ctx, P], Awaitable[R]],
                          *args: P.args, **kwargs: P.kwargs) -> R:
        """`run`, then wait until the commit survives power loss: for what the caller is
        about to acknowledge (a 201, an SMTP 250, an accepted chat line)."""
        result = await self.run(use_case, *args, **kwargs)
        await self.store.sync()
        return result

    async def _retrying(self, attempt: Callable[[], Awaitable[R]],
                        watch: Watch | None = None) -> R:
        """Run `attempt` again after a short random pause each time it lost a race."""
        for n in range(self.retries):
            try:
                return await attempt()
            except ConflictError:
                if watch is not None:
                    watch.conflict()
                if n + 1 == self.retries:
                    raise
                await asyncio.sleep(random.uniform(0, 0.005 * (n + 1)))
        raise ConflictError("unreachable")

    async def run_once(self, use_case: Callable[Concatenate[Ctx, P], Awaitable[R]],
                       *args: P.args, **kwargs: P.kwargs) -> R:
        """One attempt: ConflictError when it lost a race."""
        async with self.store.unit_of_work() as uow:
            ctx = Ctx(uow, self.clock, self.catalog, self._hooks,
                      cards_delivered=self._cards_delivered)
            books = self.jobs.books(ctx)
            result = await use_case(ctx, *args, **kwargs)
            await books.write_leased()
            if ctx.touched:
                uow.announce(ctx.touched)
            await uow.commit()
        self.jobs.committed(books)
        if ctx.emitted:
            self.observer.committed(ctx.emitted)
        if ctx.touched:
            for listener in self._listeners:
                listener(ctx.touched)
        return result

    async def finish(self, job: Timer, use_case: Callable[Concatenate[Ctx, P], Awaitable[R]],
                     *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the last unit of work of the job `job` (its effect does nothing after it) and
        remove the job in it when nothing changed it since this instance last wrote it: one
        transaction, not two. Otherwise (re-armed meanwhile, say) as `run`, and the job
        completes after as any other."""
        held = self.jobs.running(job)
        if held is None:
            return await self.run(use_case, *args, **kwargs)
        removed = False

        @functools.wraps(use_case)  # it is that use case (logs and bench/storecost name it)
        async def last(ctx: Ctx) -> R:
            nonlocal removed
            removed = False  # each attempt decides afresh
            result = await use_case(ctx, *args, **kwargs)
            current = await ctx.uow.timers.get(job.id)  # after the use case: it may arm it
            if (current is not None and current.version == held.version
                    and current.lease_until == held.lease_until):
                await ctx.uow.timers.delete(current)
                removed = True
            return result

        result = await self.run(last)
        held.finished = held.finished or removed
        return result

    async def read(self, use_case: Callable[Concatenate[Ctx, P], Awaitable[R]],
                   *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a use case that only reads, on a read-only unit of work: it takes no turn on
        the write lock, commits nothing, and each read sees what was committed when it ran.
        Retried like `run`: on Cosmos a refusal on reads that changed meanwhile is a conflict."""
        async def attempt() -> R:
            async with self.store.read_only() as uow:
                return await use_case(Ctx(uow, self.clock, self.catalog), *args, **kwargs)

        # Not watched: a read commits nothing, and its time shows in the span of what asked.
        return await self._retrying(attempt)
