"""Timers live in the database: what was due while the app was down fires once after a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from bot.bootstrap import build_engine
from bot.domain import events as ev
from bot.domain.agent import AgentState
from bot.domain.events import Event
from bot.domain.service import Catalog
from bot.domain.session import Phase, SessionResult
from bot.domain.task import TaskResult, TaskState
from bot.services.context import Ctx
from bot.services.engine import Engine
from bot.services.lifecycle import terminate
from bot.services.offers import accept
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.fakes import FakeClock
from tests.scenario import (
    add_agent,
    agent_state,
    first_of_two_rings,
    load_agent,
    load_task,
    new_task,
    ringing,
    sessions_of,
)

SERVICES = catalog({"id": "sales", "members": ["a1@example.com", "a2@example.com"]})


@asynccontextmanager
async def running(db_path: Path, clock: FakeClock,
                  services: Catalog = SERVICES) -> AsyncIterator[Engine]:
    """One life of the app: a store opened on the file, an engine, and a clean stop."""
    store = await SqliteStore(db_path).open()
    try:
        yield build_engine(store, clock, services)
    finally:
        await store.close()


async def all_events(engine: Engine) -> list[Event]:
    async def read(ctx: Ctx) -> list[Event]:
        return await ctx.uow.events.after(0, 10**9)
    return await engine.run(read)


async def count(engine: Engine, name: str, where: Callable[[Event], bool] = bool) -> int:
    return sum(1 for e in await all_events(engine) if e.name == name and where(e))


async def fires_nothing_more(engine: Engine) -> None:
    """Firing again does nothing more: nothing is due, no event is written."""
    before = await all_events(engine)
    assert await engine.jobs.fire_due() == 0
    assert await all_events(engine) == before


async def test_ring_timeout_due_while_down_fires_once_after_restart(
        db_path: Path, clock: FakeClock) -> None:
    async with running(db_path, clock) as engine:
        first, second, task, offer = await first_of_two_rings(engine, clock)
    # The app is down while the ring timeout (30 s) passes.
    clock.advance(45)
    async with running(db_path, clock) as engine:
        assert await engine.jobs.fire_due() == 1
        assert await count(engine, ev.OFFER_TIMED_OUT) == 1
        assert await count(engine, ev.OFFER_TIMED_OUT, lambda e: e.session_id == offer.id) == 1
        results = {s.id: s.result for s in await sessions_of(engine, task.id)}
        assert results[offer.id] is SessionResult.RONA
        assert await agent_state(engine, first) is AgentState.RONA
        [again] = await ringing(engine, task.id)
        assert again.agent_id == second
        assert (await load_task(engine, task.id)).state is TaskState.RINGING
        await fires_nothing_more(engine)  # the timer row is gone
    # Nor does a further restart at the same instant.
    async with running(db_path, clock) as engine:
        assert await engine.jobs.fire_due() == 0
        assert await count(engine, ev.OFFER_TIMED_OUT) == 1
        assert [s.agent_id for s in await ringing(engine, task.id)] == [second]


async def test_after_call_work_ends_once_after_restart(db_path: Path, clock: FakeClock) -> None:
    async with running(db_path, clock) as engine:
        agent = await add_agent(engine, 1)
        task = await new_task(engine)
        [offer] = await ringing(engine, task.id)
        await engine.run(accept, offer.id, agent)
        await engine.run(terminate, offer.id, agent_id=agent)
        assert await agent_state(engine, agent) is AgentState.ACW
        waiting = await new_task(engine, name="Waiting")  # queued behind the ACW
        assert await ringing(engine, waiting.id) == []
    async with running(db_path, clock) as engine:
        # Restarted while ACW runs: nothing is due yet, then the time passes.
        assert await engine.jobs.fire_due() == 0
        assert await agent_state(engine, agent) is AgentState.ACW
        clock.advance(25)  # ACW is 20 s by default
        assert await engine.jobs.fire_due() == 1
        assert await count(engine, ev.ACW_ENDED) == 1
        assert await count(engine, ev.TASK_DONE, lambda e: e.task_id == task.id) == 1
        [session] = [s for s in await sessions_of(engine, task.id) if s.id == offer.id]
        assert session.phase is Phase.ENDED
        assert session.acw_ended_at == clock.now()
        done = await load_task(engine, task.id)
        assert (done.state, done.result) == (TaskState.DONE, TaskResult.HANDLED)
        # The agent left ACW, so the waiting task rings them.
        assert [s.agent_id for s in await ringing(engine, waiting.id)] == [agent]
        await fires_nothing_more(engine)
    async with running(db_path, clock) as engine:
        assert await engine.jobs.fire_due() == 0
        assert await count(engine, ev.ACW_ENDED) == 1


async def test_rona_reset_and_queue_timeout_fire_once_after_restart(
        db_path: Path, clock: FakeClock) -> None:
    async with running(db_path, clock) as engine:
        agent = await add_agent(engine, 1)
        task = await new_task(engine)
        clock.advance(30)
        assert await engine.jobs.fire_due() == 1  # RONA: the task waits, nobody else is there
        assert await agent_state(engine, agent) is AgentState.RONA
        assert await ringing(engine, task.id) == []
    clock.advance(600)  # the RONA reset time (10 min) passes while the app is down
    async with running(db_path, clock) as engine:
        assert await engine.jobs.fire_due() == 1
        assert (await load_agent(engine, agent)).rona_until is None
        [again] = await ringing(engine, task.id)
        assert again.agent_id == agent
        assert await engine.jobs.fire_due() == 0
        assert await count(engine, ev.OFFER_CREATED) == 2  # the first offer and this one
    clock.advance(3600)  # past the maximum queue time (1 h) and the new ring timeout
    async with running(db_path, clock) as engine:
        fired = 0
        while batch := await engine.jobs.fire_due():
            fired += batch
        assert fired == 2  # the second ring timeout, then the queue timeout
        assert await count(engine, ev.TASK_EXPIRED) == 1
        expired = await load_task(engine, task.id)
        assert (expired.state, expired.result) == (TaskState.EXPIRED, TaskResult.NOT_HANDLED)
        assert await ringing(engine, task.id) == []
        assert await engine.jobs.fire_due() == 0
