"""Runs use cases in units of work with conflict retries, and fires due timers and jobs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from bot.domain import timers as tk
from bot.domain.service import Catalog
from bot.domain.timers import JOB_LEASE, Timer
from bot.services import agents, conversation, lifecycle, offers, privacy
from bot.services.context import Ctx, EventHook
from bot.services.ports import Clock, ConflictError, Store, StoreUnavailable

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

TimerHandler = Callable[[Ctx, str], Awaitable[Any]]
Effect = Callable[[Timer], Awaitable[None]]


async def _stale_sweep(ctx: Ctx, _ref: str) -> None:
    await lifecycle.stale_sweep(ctx)


async def _idle_timeout(ctx: Ctx, task_id: str) -> None:
    await conversation.idle_timeout(ctx, task_id)


TIMER_HANDLERS: dict[str, TimerHandler] = {
    tk.IDLE_TIMEOUT: _idle_timeout,
    tk.CONTEXT_PURGE: privacy.purge,
    tk.RING_TIMEOUT: offers.ring_timeout,
    tk.RONA_RESET: agents.rona_expired,
    tk.ACW_END: lifecycle.acw_timeout,
    tk.QUEUE_TIMEOUT: lifecycle.expire_task,
    tk.STALE_SWEEP: _stale_sweep,
}

_LATER = datetime.max.replace(tzinfo=UTC)
LEASE_RENEWAL = 1.5  # seconds between renewals of a running job's lease (JOB_LEASE: 5 s)
EFFECT_MAX_ATTEMPTS = 12


@dataclass
class Held:
    """A job this instance runs: the version of its timer as last written here, and whether
    someone re-armed it meanwhile (a newer change to show: it must run again after this)."""

    timer: Timer
    version: int
    rearmed: bool = False
    ran: asyncio.Event = field(default_factory=asyncio.Event)  # the job is over: stop renewing
    renewal_due: asyncio.TimerHandle | None = None  # when its renewal task would start
    renewing: asyncio.Task[None] | None = None
    lease_until: datetime | None = None  # as this instance last wrote it
    finished: bool = False  # removed by its own last unit of work (Engine.finish)
    armed_here: Timer | None = None  # the last re-arm of it while it ran, written here

    def leased_again(self, now: datetime) -> Held | None:
        """The next run, still leased, when the one change since this run started was a
        re-arm due now written here (so the row says: that version, this lease) and the lease
        has time left; None when only a read of the row can tell."""
        armed = self.armed_here
        if (armed is None or armed.version != self.version + 1 or armed.due_at > now
                or self.lease_until is None or self.lease_until - now < JOB_LEASE / 2):
            return None
        timer = replace(self.timer, due_at=armed.due_at, data=armed.data,
                        lease_until=self.lease_until, attempts=self.timer.attempts + 1,
                        version=armed.version)
        return Held(timer, armed.version)

    def __post_init__(self) -> None:
        self.lease_until = self.timer.lease_until


class Engine:
    """The one door to the use cases: every call is a unit of work, retried on conflicts."""

    def __init__(self, store: Store, clock: Clock, catalog: Catalog, *,
                 retries: int = 8) -> None:
        self.store = store
        self.clock = clock
        self.catalog = catalog
        self.retries = retries
        self.effects: dict[str, Effect] = {}
        self.listeners: list[Callable[[set[str]], None]] = []
        # Called inside the unit of work of each event (bot.webhooks queues its requests).
        self.event_hooks: list[EventHook] = []
        self._wake = asyncio.Event()
        self._resting = asyncio.Event()  # the scheduler waits for a wake-up or its next timer
        self._running: dict[str, asyncio.Task[int]] = {}  # the latest run of each job
        self._jobs: set[asyncio.Task[int]] = set()  # every run, one waiting on another too
        self._effects_running: dict[str, Held] = {}  # jobs whose effect runs now, by timer id
        self.lease_renewal = LEASE_RENEWAL
        # While the scheduler runs, jobs armed due now are leased here and start on commit.
        self._scheduling = False
        # Timers due before this the scheduler finds without a wake-up (None: wake it for any).
        self._looks_before: datetime | None = None
        self._at_once: frozenset[str] = frozenset()

    def add_effects(self, effects: Mapping[str, Effect]) -> None:
        self.effects.update(effects)
        if self._scheduling:
            self._at_once = frozenset(self.effects)
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def idle(self) -> None:
        """Return once this instance has nothing to do now: none of its jobs runs and its
        scheduler, if it runs, rests with no wake-up pending. Tests await this instead of
        sleeping before they assert that nothing (more) happened."""
        while True:
            if self._jobs:
                await asyncio.wait(set(self._jobs))
            elif not self._scheduling or (self._resting.is_set() and not self._wake.is_set()):
                return
            elif self._resting.is_set():
                await asyncio.sleep(0)  # woken: its next pass is about to start
            else:
                await self._resting.wait()

    async def run(self, use_case: Callable[Concatenate[Ctx, P], Awaitable[R]],
                  *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._retrying(functools.partial(self._once, use_case, *args, **kwargs))

    async def run_durably(self, use_case: Callable[Concatenate[Ctx, P], Awaitable[R]],
                          *args: P.args, **kwargs: P.kwargs) -> R:
        """`run`, then wait until the commit survives power loss: for what the caller is
        about to acknowledge (a 201, an SMTP 250, an accepted chat line)."""
        result = await self.run(use_case, *args, **kwargs)
        await self.store.sync()
        return result

    async def _retrying(self, attempt: Callable[[], Awaitable[R]]) -> R:
        """Run `attempt` again after a short random pause each time it lost a race."""
        for n in range(self.retries):
            try:
                return await attempt()
            except ConflictError:
                if n + 1 == self.retries:
                    raise
                await asyncio.sleep(random.uniform(0, 0.005 * (n + 1)))
        raise ConflictError("unreachable")

    async def _once(self, use_case: Callable[Concatenate[Ctx, P], Awaitable[R]],
                    *args: P.args, **kwargs: P.kwargs) -> R:
        """One attempt: ConflictError when it lost a race."""
        async with self.store.unit_of_work() as uow:
            ctx = Ctx(uow, self.clock, self.catalog, tuple(self.event_hooks), self._at_once,
                      cards_delivered=tk.SYNC_CARD in self.effects)
            result = await use_case(ctx, *args, **kwargs)
            await ctx.arm_leased()
            if ctx.touched:
                uow.announce(ctx.touched)
            await uow.commit()
        due = ctx.earliest_due
        if due is not None and (self._looks_before is None or due < self._looks_before):
            self.wake()
        for timer in ctx.leased.values():
            if timer.lease_until is not None:
                if timer.lease_until - self.clock.now() < JOB_LEASE / 2:
                    # The unit of work took so long that the lease it wrote is (nearly) out:
                    # another instance may take the job now, so it is left to whoever claims it
                    # (a conditional write) instead of running twice.
                    self.wake()
                    continue
                self._start_job(Held(timer, timer.version))
                continue
            # Its holder runs it again after; if that is a run here, it need not first try
            # to remove it (a write that would fail).
            held = self._effects_running.get(timer.id)
            if held is not None:
                held.rearmed, held.armed_here = True, timer
        if ctx.touched:
            for listener in self.listeners:
                listener(ctx.touched)
        return result

    async def finish(self, job: Timer, use_case: Callable[Concatenate[Ctx, P], Awaitable[R]],
                     *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the last unit of work of the job `job` (its effect does nothing after it) and
        remove the job in it when nothing changed it since this instance last wrote it: one
        transaction, not two. Otherwise (re-armed meanwhile, say) as `run`, and the job
        completes after as any other."""
        held = self._effects_running.get(job.id)
        if held is None or held.timer is not job or held.rearmed:
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

        return await self._retrying(attempt)

    # -- timers -----------------------------------------------------------------------------

    def _kinds(self) -> list[str]:
        return [*TIMER_HANDLERS, *self.effects]

    async def fire_due(self, limit: int = 100, *, background: bool = False) -> int:
        """Fire every timer and job due now; returns how many fired here.

        With `background` (the scheduler loop) jobs run as tasks of their own, so a job stuck
        retrying against an outage never holds up ring timeouts and the other timers; a job
        already running here is not started twice."""
        # Read without waiting for writers: a timer fires after a re-read, a job is claimed
        # by a write conditional on the version read here.
        async with self.store.read_only() as uow:
            due = await uow.timers.due(self.clock.now(), limit, self._kinds())
        fired = 0
        effects: list[Timer] = []
        for timer in due:
            if timer.kind in TIMER_HANDLERS:
                fired += await self._fire_timer(timer)
            elif timer.id not in self._running:
                effects.append(timer)
        if background:
            for timer in effects:
                self._track(timer.id, self._run_effect(timer))
            return fired + len(effects)
        if effects:
            results = await asyncio.gather(*(self._run_effect(t) for t in effects))
            fired += sum(results)
        return fired

    def _track(self, key: str, job: Coroutine[Any, Any, int]) -> None:
        task = asyncio.create_task(job)
        self._running[key] = task
        self._jobs.add(task)
        task.add_done_callback(functools.partial(self._forget_job, key))

    def _start_job(self, held: Held) -> None:
        """Run a job this instance leased as it armed it (see Ctx.run_at_once). Its last run
        here may not have quite ended (it completed, then this lease was taken): after it."""
        self._track(held.timer.id, self._run_held(held, after=self._running.get(held.timer.id)))

    def _forget_job(self, key: str, task: asyncio.Task[int]) -> None:
        self._jobs.discard(task)
        if self._running.get(key) is task:
            self._running.pop(key, None)

    async def stop_jobs(self) -> None:
        """Cancel jobs still running; their leases run out and they run again later."""
        running = list(self._jobs)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def _fire_timer(self, timer: Timer) -> int:
        handler = TIMER_HANDLERS[timer.kind]

        async def fire(ctx: Ctx) -> int:
            current = await ctx.uow.timers.get(timer.id)
            if current is None or not current.is_due(ctx.now):
                return 0
            await ctx.uow.timers.delete(current)  # the conditional write: only one loop wins
            await handler(ctx, current.ref)
            return 1

        try:
            return await self.run(fire)
        except ConflictError:
            return 0

    async def _run_effect(self, timer: Timer) -> int:
        claimed = await self._claim(timer)
        if claimed is None:
            return 0
        return await self._run_held(Held(claimed, claimed.version))

    async def _run_held(self, held: Held, after: asyncio.Task[int] | None = None) -> int:
        """Run a job this instance holds; armed again due now while it ran, it runs again
        right here, still leased (no scheduler pass has to find it and claim it again)."""
        ran = 0
        again: Held | None = held
        while again is not None:
            held = again
            if not await self._run_effect_held(held, after):
                return ran
            after = None
            again = None if held.finished else await self._complete(held)
            ran = 1
        return ran

    async def _run_effect_held(self, held: Held, after: asyncio.Task[int] | None) -> bool:
        """One run of the effect; False when it failed (it runs again later, `_retry_later`)."""
        claimed = held.timer
        # Most jobs end in milliseconds: a renewal task starts only for one still running
        # when its lease wants renewing.
        held.renewal_due = asyncio.get_running_loop().call_later(
            self.lease_renewal, self._start_renewal, held)
        try:
            if after is not None:
                await asyncio.wait([after])  # never two runs of one job at once
            self._effects_running[claimed.id] = held
            await self.effects[claimed.kind](claimed)
        except Exception as exc:  # an effect talks to the outside world; it may fail any way
            log.warning("job failed", extra={"job": claimed.kind, "attempt": claimed.attempts,
                                             "error": type(exc).__name__})
            await self._stop(held)
            await self._retry_later(held)
            return False
        except BaseException:  # stopping: the lease runs out, and the job runs again
            held.renewal_due.cancel()
            if held.renewing is not None:
                held.renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await held.renewing
            raise
        finally:
            if self._effects_running.get(claimed.id) is held:
                del self._effects_running[claimed.id]
        await self._stop(held)
        return True

    def _start_renewal(self, held: Held) -> None:
        held.renewing = asyncio.create_task(self._renew(held))

    @staticmethod
    async def _stop(held: Held) -> None:
        """Let a renewal under way finish rather than cancel it: cancelled after its write,
        the version it wrote would be lost, and the job would look re-armed and run again."""
        if held.renewal_due is not None:
            held.renewal_due.cancel()
        held.ran.set()
        if held.renewing is not None:
            await held.renewing

    async def _claim(self, timer: Timer) -> Timer | None:
        """Lease a job the scheduler found due: a write conditional on the version it read
        (so no second read: unchanged since, it is still due), once; lost, someone else has
        it or it changed, and the next pass sees."""
        async def claim(ctx: Ctx) -> Timer:
            leased = replace(timer, lease_until=ctx.now + JOB_LEASE,
                             attempts=timer.attempts + 1)
            await ctx.uow.timers.save(leased)
            return leased

        try:
            return await self._once(claim)
        except ConflictError:
            return None

    async def _renew(self, held: Held) -> None:
        """Keep the lease of a running job for as long as it runs: now (its renewal fell due),
        then every `lease_renewal` seconds."""
        async def renew(ctx: Ctx) -> tuple[int, Timer] | None:
            current = await ctx.uow.timers.get(held.timer.id)
            if current is None:
                return None
            seen = current.version
            current.lease_until = ctx.now + JOB_LEASE
            await ctx.uow.timers.save(current)
            return seen, current

        while not held.ran.is_set():
            try:
                renewed = await self.run(renew)
            except (ConflictError, StoreUnavailable) as exc:  # next time, or the lease runs out
                log.warning("lease not renewed", extra={"job": held.timer.kind,
                                                        "error": type(exc).__name__})
            else:
                if renewed is None:
                    return
                # Only what was committed counts (a retried attempt may have read an older
                # version).
                seen, written = renewed
                held.rearmed = held.rearmed or seen != held.version
                held.version, held.lease_until = written.version, written.lease_until
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.lease_renewal):
                    await held.ran.wait()

    async def _complete(self, held: Held) -> Held | None:
        """Remove the job that ran; armed again meanwhile (a newer change to show), it stays:
        due now, still leased to run again here (returned), else released for its time."""
        async def done(ctx: Ctx) -> None:
            # Unchanged since this instance last wrote it: gone in one write, no read.
            await ctx.uow.timers.delete(replace(held.timer, version=held.version))

        if not held.rearmed:
            with contextlib.suppress(ConflictError):
                await self._once(done)
                return None
        run_on = held.leased_again(self.clock.now())
        if run_on is not None:
            return run_on  # nothing to write: the row already says so

        async def complete(ctx: Ctx) -> Timer | None:
            current = await ctx.uow.timers.get(held.timer.id)
            if current is None:
                return None
            if current.version == held.version and not held.rearmed:
                await ctx.uow.timers.delete(current)
                return None
            if current.lease_until != held.lease_until:
                return None  # this lease ran out and another run holds it now: theirs
            if current.due_at <= ctx.now:
                current.lease_until = ctx.now + JOB_LEASE
                current.attempts += 1
                await ctx.uow.timers.save(current)
                return current
            current.lease_until = None
            await ctx.uow.timers.save(current)
            return None

        try:
            again = await self.run(complete)
        except ConflictError:
            return None
        if again is None:
            self.wake()  # released when re-armed for later: the scheduler must know
            return None
        return Held(again, again.version)

    async def _retry_later(self, held: Held) -> None:
        async def retry(ctx: Ctx) -> None:
            current = await ctx.uow.timers.get(held.timer.id)
            if current is None:
                return
            if current.version != held.version or held.rearmed:
                # Re-armed while it ran: a fresh job, due when it was armed for.
                current.lease_until = None
                await ctx.uow.timers.save(current)
                return
            if current.attempts >= EFFECT_MAX_ATTEMPTS:
                log.error("job abandoned", extra={"job": current.kind,
                                                  "attempts": current.attempts})
                await ctx.uow.timers.delete(current)
                return
            backoff = min(300.0, 2.0 ** current.attempts) * random.uniform(0.5, 1.0)
            current.due_at = ctx.now + timedelta(seconds=backoff)
            current.lease_until = None
            await ctx.uow.timers.save(current)

        with contextlib.suppress(ConflictError):
            await self.run(retry)

    async def next_due_in(self, default: float) -> float:
        async with self.store.read_only() as uow:
            due: datetime | None = await uow.timers.next_due_at(self._kinds())
        if due is None:
            return default
        return max(0.0, min(default, (due - self.clock.now()).total_seconds()))

    async def run_scheduler(self, *, poll: float = 1.0) -> None:
        """Fire timers for as long as the app runs; woken early after every change. Meanwhile
        jobs armed due now start as their unit of work commits (Ctx.run_at_once)."""
        self._scheduling, self._at_once = True, frozenset(self.effects)
        try:
            await self._schedule(poll)
        finally:
            self._scheduling, self._at_once = False, frozenset()
            self._looks_before = None

    async def _schedule(self, poll: float) -> None:
        while True:
            # Cleared before the pass, so a wake-up during it starts the next one at once.
            self._wake.clear()
            try:
                # Timers armed meanwhile need no wake-up: next_due_in reads them after.
                self._looks_before = _LATER
                while await self.fire_due(background=True):
                    pass
                self._looks_before = None  # from its read until the wait starts: wake for any
                wait = await self.next_due_in(poll)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler pass failed")
                wait = poll
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives just as the event is set, and the app would never stop.
            self._looks_before = self.clock.now() + timedelta(seconds=wait)
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        self._resting.set()
                        await self._wake.wait()
            finally:
                self._resting.clear()
                self._looks_before = None
