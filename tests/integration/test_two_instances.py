"""Two app instances on one database: every decision is a conditional write, made once.

Each instance is a SqliteStore of its own (its own connection and thread) with an Engine of its
own; asyncio.gather really interleaves them, and SQLite's snapshot check turns a lost race into a
ConflictError that the engine retries on fresh state.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.bootstrap import TIMER_HANDLERS, build_engine
from bot.domain import events as ev
from bot.domain.agent import AgentState
from bot.domain.errors import Stale
from bot.domain.events import Event
from bot.domain.service import Catalog
from bot.domain.session import Phase, Session, SessionResult
from bot.domain.task import TaskState
from bot.domain.timers import RING_TIMEOUT, RONA_RESET
from bot.services.context import Ctx
from bot.services.engine import Engine
from bot.services.lifecycle import terminate
from bot.services.offers import accept
from bot.services.ports import ConflictError
from bot.storage.sqlite import SqliteStore, SqliteUnitOfWork
from tests.builders import catalog
from tests.fakes import FakeClock
from tests.scenario import add_agent, agent_state, load_agent, load_task, new_task, sessions_of

ROUNDS = 30
BUSY_TIMEOUT_MS = 250


@pytest.fixture
async def stores(db_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    one = await SqliteStore(db_path, busy_timeout_ms=BUSY_TIMEOUT_MS).open()
    two = await SqliteStore(db_path, busy_timeout_ms=BUSY_TIMEOUT_MS).open()
    yield one, two
    await one.close()
    await two.close()


def engines(stores: tuple[SqliteStore, SqliteStore], clock: FakeClock,
            services: Catalog) -> tuple[Engine, Engine]:
    return build_engine(stores[0], clock, services), build_engine(stores[1], clock, services)


async def all_events(engine: Engine) -> list[Event]:
    async def read(ctx: Ctx) -> list[Event]:
        return await ctx.uow.events.after(0, 10**9)
    return await engine.run(read)


async def due_timers(engine: Engine) -> int:
    """Timers (not effect jobs, which no instance here runs) due now."""
    async def read(ctx: Ctx) -> int:
        assert isinstance(ctx.uow, SqliteUnitOfWork)
        return len(await ctx.uow.timers.due(ctx.now, 10**6, list(TIMER_HANDLERS)))
    return await engine.run(read)


def counting(use_case: Callable[..., Awaitable[Any]],
             attempts: Counter[str], key: str) -> Callable[..., Awaitable[Any]]:
    """The same use case, counting how often the engine ran it (more than once = it retried).
    Its first attempt lets the loop turn before the commit: a store's statements may all end
    without the loop ever turning, and the other instance must read the same state meanwhile
    for the two to really race."""
    async def run(ctx: Ctx, *args: Any, **kwargs: Any) -> Any:
        attempts[key] += 1
        result = await use_case(ctx, *args, **kwargs)
        if attempts[key] == 1:
            await asyncio.sleep(0)
        return result
    return run


def assert_clean_loss(outcome: object) -> None:
    assert isinstance(outcome, Stale | ConflictError), f"the losing accept raised {outcome!r}"


async def test_the_same_offer_accepted_on_two_instances_connects_once(
        stores: tuple[SqliteStore, SqliteStore], clock: FakeClock) -> None:
    services = catalog({"id": "sales", "acw": {"duration": "0s"}})
    one, two = engines(stores, clock, services)
    agent = await add_agent(one, 1)
    attempts: Counter[str] = Counter()
    losses: Counter[str] = Counter()
    for n in range(ROUNDS):
        task = await new_task(one, name=f"Customer {n}")
        [offer] = [s for s in await sessions_of(two, task.id) if s.phase is Phase.RINGING]
        # The agent's click reaches both instances (a retried invoke, two replicas).
        outcomes = await asyncio.gather(
            one.run(counting(accept, attempts, f"{n}:1"), offer.id, agent),
            two.run(counting(accept, attempts, f"{n}:2"), offer.id, agent),
            return_exceptions=True)
        wins = [o for o in outcomes if isinstance(o, Session)]
        assert len(wins) == 1, outcomes
        for loss in (o for o in outcomes if not isinstance(o, Session)):
            assert_clean_loss(loss)
            losses[type(loss).__name__] += 1
        sessions = await sessions_of(one, task.id)
        assert [s.id for s in sessions if s.phase is Phase.CONNECTED] == [offer.id]
        stored = await load_task(two, task.id)
        assert (stored.state, stored.session_id, stored.agent_id) == (
            TaskState.CONNECTED, offer.id, agent)
        names = Counter(e.name for e in await all_events(one) if e.task_id == task.id)
        assert names[ev.OFFER_ACCEPTED] == 1
        assert names[ev.SESSION_CONNECTED] == 1
        engaged = (await load_agent(two, agent)).engagements
        assert [(e.session_id, e.phase) for e in engaged] == [(offer.id, "connected")]
        await two.run(terminate, offer.id, agent_id=agent)
        assert await agent_state(one, agent) is AgentState.AVAILABLE

    assert sum(losses.values()) == ROUNDS
    # The two really raced: in some rounds an instance ran the accept more than once because
    # its first attempt lost the conditional write.
    assert sum(attempts.values()) > 2 * ROUNDS, attempts


async def test_two_broadcast_offers_accepted_on_two_instances_connect_once(
        stores: tuple[SqliteStore, SqliteStore], clock: FakeClock) -> None:
    services = catalog({"id": "sales", "members": ["a1@example.com", "a2@example.com"],
                        "distribution": {"mode": "broadcast", "broadcast_size": 2},
                        "acw": {"duration": "0s"}})
    one, two = engines(stores, clock, services)
    agents = [await add_agent(one, 1), await add_agent(two, 2)]
    winners: Counter[str] = Counter()
    for n in range(ROUNDS):
        task = await new_task(one, name=f"Customer {n}")
        offers = sorted((s for s in await sessions_of(two, task.id)
                         if s.phase is Phase.RINGING), key=lambda s: s.agent_id)
        assert [s.agent_id for s in offers] == agents
        # Each agent accepts their own invitation, each through another instance.
        outcomes = await asyncio.gather(
            one.run(accept, offers[0].id, agents[0]),
            two.run(accept, offers[1].id, agents[1]),
            return_exceptions=True)
        wins = [o for o in outcomes if isinstance(o, Session)]
        assert len(wins) == 1, outcomes
        for loss in (o for o in outcomes if not isinstance(o, Session)):
            assert_clean_loss(loss)
        [winner] = wins
        winners[winner.agent_id] += 1
        results = {s.agent_id: s.result for s in await sessions_of(one, task.id)}
        loser = next(a for a in agents if a != winner.agent_id)
        assert results == {winner.agent_id: SessionResult.ACCEPTED,
                           loser: SessionResult.RESCINDED}
        names = Counter(e.name for e in await all_events(two) if e.task_id == task.id)
        assert (names[ev.OFFER_ACCEPTED], names[ev.OFFER_RESCINDED]) == (1, 1)
        assert (await load_agent(one, loser)).engagements == []
        assert await agent_state(two, winner.agent_id) is AgentState.BUSY
        await one.run(terminate, winner.id, agent_id=winner.agent_id)
    assert sum(winners.values()) == ROUNDS


async def fire_on_both_until_quiet(one: Engine, two: Engine) -> tuple[int, int]:
    """Both schedulers fire what is due at the same time, until nothing is due any more."""
    fired = [0, 0]
    for _ in range(50):
        first, second = await asyncio.gather(one.jobs.fire_due(), two.jobs.fire_due())
        fired[0] += first
        fired[1] += second
        if first == second == 0 and await due_timers(one) == 0:
            return fired[0], fired[1]
    raise AssertionError("due timers never ran out")


async def test_a_due_timer_fires_once_with_two_schedulers(
        stores: tuple[SqliteStore, SqliteStore], clock: FakeClock) -> None:
    members = [f"a{n}@example.com" for n in range(1, ROUNDS + 1)]
    services = catalog({"id": "sales", "members": members})
    one, two = engines(stores, clock, services)
    agents = [await add_agent(one if n % 2 else two, n) for n in range(1, ROUNDS + 1)]
    tasks = [await new_task(one if n % 2 else two, name=f"Customer {n}")
             for n in range(ROUNDS)]
    first_offers: dict[str, Session] = {}
    for task in tasks:
        [offer] = await sessions_of(one, task.id)
        first_offers[offer.id] = offer
    assert sorted(s.agent_id for s in first_offers.values()) == sorted(agents)

    # Every ring timeout is due at once; both instances' schedulers go for all of them.
    clock.advance(31)
    fired = await fire_on_both_until_quiet(one, two)
    assert sum(fired) == ROUNDS, fired
    timed_out = Counter(e.session_id for e in await all_events(two)
                        if e.name == ev.OFFER_TIMED_OUT)
    assert timed_out == Counter({session_id: 1 for session_id in first_offers})
    for agent in agents:
        assert await agent_state(one, agent) is AgentState.RONA
    for task in tasks:
        assert (await load_task(two, task.id)).state is TaskState.QUEUED

    # Every RONA reset is due at once; each reset dispatches, on both instances at the same
    # time: still one offer per task and one per agent.
    clock.advance(600)
    fired = await fire_on_both_until_quiet(one, two)
    # The first reset dispatches and meets agents whose RONA has run out too: recording that
    # clears their flag and cancels their own reset timer, so fewer than 30 may fire.
    assert 1 <= sum(fired) <= ROUNDS, fired
    log = await all_events(one)
    rona_over = Counter(e.agent_id for e in log if e.name == ev.AGENT_STATE_CHANGED
                        and e.data.get("previous") == AgentState.RONA.value)
    assert rona_over == Counter({agent: 1 for agent in agents})  # each RONA ends exactly once
    assert sum(1 for e in log if e.name == ev.OFFER_TIMED_OUT) == ROUNDS  # nothing more
    ringing_now: list[Session] = []
    for task in tasks:
        offers = [s for s in await sessions_of(two, task.id) if s.phase is Phase.RINGING]
        assert len(offers) == 1, (task.id, offers)
        stored = await load_task(one, task.id)
        assert (stored.state, stored.ringing) == (TaskState.RINGING, [offers[0].id])
        ringing_now += offers
    assert sorted(s.agent_id for s in ringing_now) == sorted(agents)
    for agent in agents:
        loaded = await load_agent(two, agent)
        assert loaded.rona_until is None
        assert [e.phase for e in loaded.engagements] == ["ringing"]
        assert await agent_state(one, agent) is AgentState.RINGING

    async def timers(ctx: Ctx) -> list[str]:
        assert isinstance(ctx.uow, SqliteUnitOfWork)
        rows = await ctx.uow.fetch("SELECT kind FROM timers WHERE kind IN (?, ?)",
                                   (RING_TIMEOUT, RONA_RESET))
        return [str(r[0]) for r in rows]

    # What waits now is exactly one ring timeout per new offer, and no RONA reset.
    assert Counter(await one.run(timers)) == Counter({RING_TIMEOUT: ROUNDS})
