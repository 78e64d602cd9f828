"""Jobs (effects) on both stores: a running job keeps its lease, a dead one loses it soon."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.bootstrap import Outside, wiring
from bot.domain.service import Catalog
from bot.domain.timers import JOB_LEASE, Timer
from bot.services.context import Ctx
from bot.services.engine import Engine
from bot.services.jobs import Effect, Wiring
from bot.services.ports import Store
from tests.contract.conftest import Backend
from tests.fakes import FakeClock

JOB = "sync_card"


class Job:
    """An effect that runs until the test lets it finish, counting its runs."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.finish = asyncio.Event()
        self.runs = 0

    async def __call__(self, timer: Timer) -> None:
        self.runs += 1
        self.started.set()
        await self.finish.wait()


Pair = Callable[..., Awaitable[tuple[Engine, Engine]]]
"""Two instances on one store: `await pair(one_effect, two_effect)`, the job's effect on
instance one and on instance two (None: that instance does not run the job)."""


@pytest.fixture
async def pair(backend: Backend, store: Store, clock: FakeClock,
               services: Catalog) -> AsyncIterator[Pair]:
    made: list[Engine] = []

    def instance(on: Store, effect: Effect | None) -> Engine:
        def wired(engine: Engine) -> Wiring:
            return replace(wiring(engine, Outside()),
                           effects={JOB: effect} if effect is not None else {})
        return Engine(on, clock, services, wired)

    async def make(one: Effect | None = None,
                   two: Effect | None = None) -> tuple[Engine, Engine]:
        engines = instance(store, one), instance(await backend.open(), two)
        made.extend(engines)
        return engines

    yield make
    for engine in made:
        await engine.jobs.stop_jobs()


async def jobs_on(pair: Pair) -> tuple[Engine, Engine, Job, Job]:
    """Two instances, each running the job as its own (instance one's, instance two's)."""
    jobs = Job(), Job()
    one, two = await pair(*jobs)
    return one, two, *jobs


async def arm(engine: Engine, ref: str = "s1") -> None:
    async def do(ctx: Ctx) -> None:
        await ctx.arm(JOB, ref, ctx.now)
    await engine.run(do)


async def stored(engine: Engine, ref: str = "s1") -> Timer | None:
    async def load(ctx: Ctx) -> Timer | None:
        return await ctx.uow.timers.get(f"{JOB}:{ref}")
    return await engine.run(load)


async def renewed(engine: Engine, beyond: Timer) -> Timer:
    """Wait until the running job's lease was renewed past what `beyond` had."""
    for _ in range(500):
        current = await stored(engine)
        assert current is not None
        if current.lease_until and beyond.lease_until and current.lease_until > beyond.lease_until:
            return current
        await asyncio.sleep(0.005)
    raise AssertionError("the lease was not renewed")


async def gone(engine: Engine, ref: str = "s1") -> bool:
    """Wait until the job's timer is gone (the job completed)."""
    for _ in range(500):
        if await stored(engine, ref) is None:
            return True
        await asyncio.sleep(0.005)
    return False


async def start(engine: Engine, job: Job) -> None:
    """Arm the job and let a scheduler pass of `engine` claim and start it."""
    await arm(engine)
    assert await engine.jobs.fire_due(background=True) == 1
    await job.started.wait()


async def test_a_running_job_keeps_its_lease_and_runs_once(
        pair: Pair, clock: FakeClock) -> None:
    job = Job()
    one, two = await pair(job, job)
    one.jobs.lease_renewal = 0.01
    await start(one, job)
    current = await stored(one)
    assert current is not None
    for _ in range(4):  # far longer than one lease, the job still running on instance one
        clock.advance(JOB_LEASE.total_seconds() * 0.8)
        current = await renewed(one, current)
        assert await two.jobs.fire_due() == 0
    job.finish.set()
    assert await gone(one)
    assert job.runs == 1


async def test_a_job_whose_instance_died_runs_elsewhere_once_its_lease_is_out(
        pair: Pair, clock: FakeClock) -> None:
    one, two, dying, job = await jobs_on(pair)
    await start(one, dying)
    await one.jobs.stop_jobs()  # the process is gone: its lease stays, nobody renews it
    assert await two.jobs.fire_due() == 0
    clock.advance(JOB_LEASE.total_seconds())
    job.finish.set()
    assert await two.jobs.fire_due() == 1
    assert (job.runs, await stored(two)) == (1, None)


async def test_a_job_armed_again_while_it_runs_runs_again_after(
        pair: Pair, clock: FakeClock) -> None:
    job = Job()
    one, _ = await pair(job)
    one.jobs.lease_renewal = 0.01
    await start(one, job)
    before = await stored(one)
    assert before is not None
    await arm(one)  # a newer change to show while the job runs
    clock.advance(1)
    await renewed(one, before)  # a renewal after the re-arm must not forget it
    job.finish.set()
    for _ in range(500):
        if job.runs == 2:
            break
        await one.jobs.fire_due(background=True)
        await asyncio.sleep(0.005)
    assert job.runs == 2


async def test_a_job_armed_again_due_now_runs_again_where_it_ran_without_a_scheduler_pass(
        pair: Pair) -> None:
    job = Job()
    one, two = await pair(job)
    await start(one, job)
    await arm(two)  # another instance shows a newer change while the job runs on one
    job.finish.set()
    assert await gone(one)  # no fire_due since: one ran it again, still holding its lease
    assert job.runs == 2


async def test_a_job_armed_again_for_later_while_it_runs_waits_for_its_time(
        pair: Pair, clock: FakeClock) -> None:
    job = Job()
    one, _ = await pair(job)
    await start(one, job)

    async def later(ctx: Ctx) -> None:
        await ctx.arm(JOB, "s1", ctx.now + JOB_LEASE * 2)
    await one.run(later)
    job.finish.set()
    for _ in range(500):  # the run ends and releases the job for its new time
        current = await stored(one)
        if current is not None and current.lease_until is None:
            break
        await asyncio.sleep(0.005)
    assert current is not None and current.lease_until is None and job.runs == 1
    assert await one.jobs.fire_due() == 0
    clock.advance((JOB_LEASE * 2).total_seconds())
    assert await one.jobs.fire_due() == 1
    assert (job.runs, await stored(one)) == (2, None)


@contextlib.asynccontextmanager
async def scheduling(engine: Engine) -> AsyncIterator[asyncio.Task[None]]:
    """The engine's scheduler running: jobs armed due now start as they commit. Started
    after the test made anything due, so that its passes find nothing to take."""
    loop = asyncio.create_task(engine.jobs.run_scheduler(poll=60))
    await asyncio.sleep(0)
    try:
        yield loop
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await engine.jobs.stop_jobs()


async def test_a_job_armed_due_now_is_leased_as_it_commits_and_runs_at_once(
        pair: Pair, clock: FakeClock) -> None:
    one, two, job, other = await jobs_on(pair)
    async with scheduling(one):
        await arm(one)
        written = await stored(one)
        assert written is not None
        assert (written.lease_until, written.attempts) == (clock.now() + JOB_LEASE, 1)
        await asyncio.wait_for(job.started.wait(), 5)  # no scheduler pass had to find it
        assert await two.jobs.fire_due() == 0  # leased: the other instance leaves it alone
        job.finish.set()
        assert await gone(one)
    assert (job.runs, other.runs) == (1, 0)


async def test_a_job_armed_while_another_instance_runs_it_stays_with_that_instance(
        pair: Pair) -> None:
    one, two, here, there = await jobs_on(pair)
    await start(two, there)  # no scheduler runs on two: any instance could have taken it
    held = await stored(two)
    async with scheduling(one):
        await arm(one)  # a newer change while instance two runs the job
        rearmed = await stored(one)
        assert held is not None and rearmed is not None
        assert rearmed.lease_until == held.lease_until  # two's lease stays
        assert rearmed.version == held.version + 1
        await one.jobs.idle()  # its scheduler saw the change and rests
        assert here.runs == 0  # never twice at once
        there.finish.set()  # two sees the change, releases it, and it runs again
        for _ in range(500):
            if there.runs + here.runs == 2:
                break
            await two.jobs.fire_due(background=True)
            await asyncio.sleep(0.005)
        here.finish.set()
        assert there.runs + here.runs == 2
        assert await gone(one)


async def test_a_job_armed_and_cancelled_in_one_unit_of_work_does_not_start(
        pair: Pair) -> None:
    job = Job()
    one, _ = await pair(job)

    async def arm_and_cancel(ctx: Ctx) -> None:
        await ctx.arm(JOB, "s1", ctx.now)
        await ctx.cancel(JOB, "s1")
    async with scheduling(one):
        await one.run(arm_and_cancel)
        await one.jobs.idle()
    assert job.runs == 0
    assert await stored(one) is None


async def test_a_job_leased_as_armed_by_a_dead_instance_runs_elsewhere_after_its_lease(
        pair: Pair, clock: FakeClock) -> None:
    one, two, dying, job = await jobs_on(pair)
    async with scheduling(one):
        await arm(one)
        await asyncio.wait_for(dying.started.wait(), 5)
    # The process is gone with the lease the job was born with.
    assert await two.jobs.fire_due() == 0
    clock.advance(JOB_LEASE.total_seconds())
    job.finish.set()
    assert await two.jobs.fire_due() == 1
    assert (job.runs, await stored(two)) == (1, None)


class Finishing:
    """An effect whose last unit of work goes through `Engine.finish`: it counts a run in a
    counter of the store, does `before` first, and waits after it until the test lets it end."""

    engine: Engine  # the instance that runs it, set once that is built

    def __init__(self, before: Callable[[int], Awaitable[None]] | None = None,
                 then: Callable[[Ctx], Awaitable[None]] | None = None) -> None:
        self.before, self.then = before, then
        self.finished = asyncio.Event()
        self.end = asyncio.Event()
        self.runs = 0

    async def __call__(self, timer: Timer) -> None:
        self.runs += 1
        if self.before is not None:
            await self.before(self.runs)

        async def last(ctx: Ctx) -> int:
            if self.then is not None:
                await self.then(ctx)
            return await ctx.uow.counters.next("finishing")

        await self.engine.finish(timer, last)
        self.finished.set()
        await self.end.wait()


class _Peeked(Exception):
    pass


async def counted(engine: Engine) -> int:
    """How many last units of work committed (the counter read in one that rolls back)."""
    async def peek(ctx: Ctx) -> None:
        raise _Peeked(await ctx.uow.counters.next("finishing") - 1)
    with pytest.raises(_Peeked) as peeked:
        await engine.run(peek)
    return int(peeked.value.args[0])


async def test_a_job_that_finishes_is_gone_with_its_last_unit_of_work(
        pair: Pair) -> None:
    job = Finishing()
    one, _ = await pair(job)
    job.engine = one
    await arm(one)
    assert await one.jobs.fire_due(background=True) == 1
    await asyncio.wait_for(job.finished.wait(), 5)
    # The effect has not returned yet: its last unit of work removed the job with its write.
    assert (await stored(one), await counted(one)) == (None, 1)
    job.end.set()
    await one.jobs.idle()  # the run has ended
    assert (job.runs, await one.jobs.fire_due(), await stored(one)) == (1, 0, None)


async def runs_twice_then_goes(job: Finishing, one: Engine) -> None:
    """`job`, armed again while its first run goes on, fired on `one` without waiting: it runs
    again where it ran, and that run removes it."""
    job.end.set()
    job.engine = one
    await arm(one)
    assert await one.jobs.fire_due(background=True) == 1
    assert await gone(one)
    assert (job.runs, await counted(one)) == (2, 2)


async def test_a_job_armed_again_before_it_finishes_stays_and_runs_again(
        pair: Pair) -> None:
    async def rearm_elsewhere(run: int) -> None:
        if run == 1:
            await arm(two)  # another instance shows a newer change meanwhile

    job = Finishing(before=rearm_elsewhere)
    one, two = await pair(job)
    await runs_twice_then_goes(job, one)


async def test_a_job_its_last_unit_of_work_arms_again_stays_and_runs_again(
        pair: Pair) -> None:
    armed = 0

    async def next_one(ctx: Ctx) -> None:  # as a web request delivered arms the next one
        nonlocal armed
        if armed == 0:
            armed += 1
            await ctx.arm(JOB, "s1", ctx.now)

    job = Finishing(then=next_one)
    one, _ = await pair(job)
    await runs_twice_then_goes(job, one)


class Watching:
    """An effect that notes the job's row as each run starts; the first run waits for `go`."""

    engine: Engine  # the instance that runs it, set once that is built

    def __init__(self) -> None:
        self.seen: list[Timer | None] = []
        self.started, self.go = asyncio.Event(), asyncio.Event()

    async def __call__(self, timer: Timer) -> None:
        self.seen.append(await stored(self.engine))
        self.started.set()
        if len(self.seen) == 1:
            await self.go.wait()


async def rerun_after_rearm_here(pair: Pair, clock: FakeClock,
                                 lease_used: float) -> tuple[Timer, Watching]:
    """Run the job at once on instance one, re-arm it there due now after `lease_used`
    seconds of its lease, let the run end; the row as re-armed, and what the runs saw."""
    job = Watching()
    one, _ = await pair(job)
    job.engine = one
    one.jobs.lease_renewal = 3600  # no renewal writes in between
    async with scheduling(one):
        await arm(one)
        await asyncio.wait_for(job.started.wait(), 5)
        clock.advance(lease_used)
        await arm(one)  # a newer change, written by this instance while it runs the job
        rearmed = await stored(one)
        job.go.set()
        assert await gone(one)
    assert rearmed is not None and len(job.seen) == 2
    return rearmed, job


async def test_a_job_armed_again_here_due_now_runs_again_with_no_write_in_between(
        pair: Pair, clock: FakeClock) -> None:
    rearmed, job = await rerun_after_rearm_here(pair, clock, 0.5)
    second = job.seen[1]
    assert second is not None
    assert (second.version, second.lease_until) == (rearmed.version, rearmed.lease_until)


async def test_a_job_armed_again_here_late_in_its_lease_takes_a_fresh_lease_first(
        pair: Pair, clock: FakeClock) -> None:
    rearmed, job = await rerun_after_rearm_here(pair, clock,
                                                JOB_LEASE.total_seconds() * 0.75)
    second = job.seen[1]
    assert second is not None and rearmed.lease_until is not None
    assert second.version == rearmed.version + 1
    assert second.lease_until == clock.now() + JOB_LEASE > rearmed.lease_until


async def test_a_job_whose_lease_ran_out_before_its_unit_of_work_committed_runs_once(
        pair: Pair, clock: FakeClock) -> None:
    """Found by the fleet bench on the Cosmos DB stand-in (the same invitation card posted
    twice): a unit of work that waited longer than a job's lease before it committed wrote
    the lease already run out, so another instance's scheduler took the job while the arming
    instance started it too."""
    one, two, job, other = await jobs_on(pair)

    async def slow(ctx: Ctx) -> None:
        await ctx.arm(JOB, "s1", ctx.now)
        clock.advance((JOB_LEASE + timedelta(seconds=1)).total_seconds())  # it took this long

    async with scheduling(one):
        await one.run(slow)
        await two.jobs.fire_due(background=True)  # due for anyone: its lease is out
        for _ in range(200):
            if job.runs + other.runs:
                break
            await one.jobs.fire_due(background=True)
            await asyncio.sleep(0.005)
        # The instance that does not run the job has settled: its claims ended without a run.
        bystander = two if job.runs else one
        with contextlib.suppress(TimeoutError):  # it runs the job too: the assert says so
            await asyncio.wait_for(bystander.jobs.idle(), 5)
        assert job.runs + other.runs == 1
        job.finish.set()
        other.finish.set()


async def test_idle_returns_once_no_job_runs_and_the_scheduler_rests(pair: Pair) -> None:
    job = Job()
    one, _ = await pair(job)
    async with scheduling(one):
        await arm(one)
        await asyncio.wait_for(job.started.wait(), 5)
        waiting = asyncio.create_task(one.jobs.idle())
        await asyncio.sleep(0)
        assert not waiting.done()  # the job still runs
        job.finish.set()
        await asyncio.wait_for(waiting, 5)
        assert (job.runs, await stored(one)) == (1, None)  # completed before idle returned
