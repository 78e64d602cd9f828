"""The job runner: fires due timers, leases, claims, renews and re-arms jobs, runs the scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.domain.retry import Backoff
from bot.domain.timers import JOB_LEASE, SYNC_CARD, Timer
from bot.services.context import Ctx, EventHook
from bot.services.mail import SEND_REPLY
from bot.services.ports import ConflictError, StoreUnavailable, TimerRepository

if TYPE_CHECKING:
    from bot.services.engine import Engine

log = logging.getLogger(__name__)

TimerHandler = Callable[[Ctx, str], Awaitable[Any]]
Effect = Callable[[Timer], Awaitable[None]]
Listener = Callable[[set[str]], None]
"""Told after each commit which conversations got new rows (live chats wake)."""

_LATER = datetime.max.replace(tzinfo=UTC)
LEASE_RENEWAL = 1.5  # seconds between renewals of a running job's lease (JOB_LEASE: 5 s)
EFFECT_MAX_ATTEMPTS = 12
# A failed job runs again after 2 s, 4 s, 8 s ... (at most 300 s), each at most halved by jitter.
JOB_BACKOFF = Backoff(first=2.0, cap=300.0, jitter=(0.5, 1.0))


@dataclass(frozen=True)
class Wiring:
    """What an engine runs besides the use cases it is asked to (bot/bootstrap.py builds it):
    a handler per timer kind, an effect per job kind, hooks run in the unit of work of every
    event, listeners told after every commit."""

    timers: Mapping[str, TimerHandler] = field(default_factory=dict)
    effects: Mapping[str, Effect] = field(default_factory=dict)
    event_hooks: tuple[EventHook, ...] = ()
    listeners: tuple[Listener, ...] = ()

    @property
    def cards_delivered(self) -> bool:
        """Offers ring from the delivery of their card when a Teams side sends cards."""
        return SYNC_CARD in self.effects

    @property
    def replies_enabled(self) -> bool:
        """Mail replies leave here (an SMTP relay is configured)."""
        return SEND_REPLY in self.effects


@dataclass
class Bookings:
    """The runner's books on the timers one unit of work arms (Ctx's arm port): jobs armed due
    now that this instance leases as it arms them, and the earliest due time armed."""

    timers: TimerRepository
    now: datetime
    # Job kinds this instance runs as soon as the unit of work commits: armed due now, such a
    # job is written leased to this instance (when no one else holds it), so no scheduler
    # pass has to find and claim it. Empty: every job waits for the scheduler.
    run_at_once: frozenset[str] = frozenset()
    # Jobs to arm leased, by timer id, written once each by `write_leased` (an id armed twice
    # in one unit of work must not find its own lease taken); by the commit each says if it
    # got its lease.
    leased: dict[str, Timer] = field(default_factory=dict)
    # The earliest due time armed for the scheduler: it is woken only when that comes before
    # the time it sleeps until (a cancelled timer needs no wake: it is simply not found).
    earliest_due: datetime | None = None

    async def arm(self, timer: Timer) -> None:
        if timer.kind in self.run_at_once and timer.due_at <= self.now:
            timer.lease_until = self.now + JOB_LEASE
            self.leased[timer.id] = timer
            return
        if self.earliest_due is None or timer.due_at < self.earliest_due:
            self.earliest_due = timer.due_at
        self.leased.pop(timer.id, None)
        await self.timers.arm(timer)

    async def cancel(self, timer_id: str) -> None:
        self.leased.pop(timer_id, None)
        await self.timers.cancel(timer_id)

    async def write_leased(self) -> None:
        """Write the jobs armed to run at once (the engine calls this before the commit)."""
        for timer in self.leased.values():
            await self.timers.arm(timer, now=self.now)


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


class Jobs:
    """Fires the engine's timers and runs its jobs, each in units of work of that engine."""

    def __init__(self, engine: Engine, wiring: Wiring) -> None:
        self.engine = engine
        self.timers = dict(wiring.timers)
        self.effects = dict(wiring.effects)
        self._wake = asyncio.Event()
        self._resting = asyncio.Event()  # the scheduler waits for a wake-up or its next timer
        self._scheduling = False
        self._running: dict[str, asyncio.Task[int]] = {}  # the latest run of each job
        self._jobs: set[asyncio.Task[int]] = set()  # every run, one waiting on another too
        self._effects_running: dict[str, Held] = {}  # jobs whose effect runs now, by timer id
        self.lease_renewal = LEASE_RENEWAL
        # While the scheduler runs, jobs armed due now are leased here and start on commit.
        self._at_once: frozenset[str] = frozenset()
        # Timers due before this the scheduler finds without a wake-up (None: wake it for any).
        self._looks_before: datetime | None = None

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

    def books(self, ctx: Ctx) -> Bookings:
        """Fresh books for the unit of work of `ctx`, which arms its timers through them."""
        books = Bookings(ctx.uow.timers, ctx.now, self._at_once)
        ctx.arming = books
        return books

    def committed(self, books: Bookings) -> None:
        """After the commit: wake the scheduler for what it would miss, start the jobs this
        instance leased as it armed them, note re-arms of jobs running here."""
        due = books.earliest_due
        if due is not None and (self._looks_before is None or due < self._looks_before):
            self.wake()
        for timer in books.leased.values():
            if timer.lease_until is not None:
                if timer.lease_until - self.engine.clock.now() < JOB_LEASE / 2:
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

    def running(self, job: Timer) -> Held | None:
        """This run of `job` when its effect runs here now and nobody re-armed it since."""
        held = self._effects_running.get(job.id)
        if held is None or held.timer is not job or held.rearmed:
            return None
        return held

    def _kinds(self) -> list[str]:
        return [*self.timers, *self.effects]

    async def fire_due(self, limit: int = 100, *, background: bool = False) -> int:
        """Fire every timer and job due now; returns how many fired here.

        With `background` (the scheduler loop) jobs run as tasks of their own, so a job stuck
        retrying against an outage never holds up ring timeouts and the other timers; a job
        already running here is not started twice."""
        # Read without waiting for writers: a timer fires after a re-read, a job is claimed
        # by a write conditional on the version read here.
        async with self.engine.store.read_only() as uow:
            due = await uow.timers.due(self.engine.clock.now(), limit, self._kinds())
        fired = 0
        effects: list[Timer] = []
        for timer in due:
            if timer.kind in self.timers:
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
        """Run a job this instance leased as it armed it (see Bookings.run_at_once). Its last
        run here may not have quite ended (it completed, then this lease was taken): after it."""
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
        handler = self.timers[timer.kind]

        async def fire(ctx: Ctx) -> int:
            current = await ctx.uow.timers.get(timer.id)
            if current is None or not current.is_due(ctx.now):
                return 0
            await ctx.uow.timers.delete(current)  # the conditional write: only one loop wins
            await handler(ctx, current.ref)
            return 1

        # Named after its handler in traces and metrics.
        fire.__module__, fire.__name__ = handler.__module__, handler.__name__

        try:
            return await self.engine.run(fire)
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
            with self.engine.observer.job(claimed.kind):
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
            return await self.engine.run_once(claim)
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
                renewed = await self.engine.run(renew)
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
                await self.engine.run_once(done)
                return None
        run_on = held.leased_again(self.engine.clock.now())
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
            again = await self.engine.run(complete)
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
            current.due_at = ctx.now + timedelta(seconds=JOB_BACKOFF.wait(current.attempts))
            current.lease_until = None
            await ctx.uow.timers.save(current)

        with contextlib.suppress(ConflictError):
            await self.engine.run(retry)

    async def next_due_in(self, default: float) -> float:
        async with self.engine.store.read_only() as uow:
            due: datetime | None = await uow.timers.next_due_at(self._kinds())
        if due is None:
            return default
        return max(0.0, min(default, (due - self.engine.clock.now()).total_seconds()))

    async def run_scheduler(self, *, poll: float = 1.0) -> None:
        """Fire timers for as long as the app runs; woken early after every change. Meanwhile
        jobs armed due now start as their unit of work commits (Bookings.run_at_once)."""
        self._at_once, self._scheduling = frozenset(self.effects), True
        try:
            await self._schedule(poll)
        finally:
            self._at_once, self._scheduling = frozenset(), False
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
            self._looks_before = self.engine.clock.now() + timedelta(seconds=wait)
            try:
                self._resting.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
            finally:
                self._resting.clear()
                self._looks_before = None
