"""Direct and broadcast distribution, decline, RONA, capacity and eligibility."""

from __future__ import annotations

import pytest

from bot.bootstrap import build_engine
from bot.domain.agent import AgentState
from bot.domain.errors import Stale
from bot.domain.session import SessionResult
from bot.domain.task import TaskState
from bot.services import agents as agent_cases
from bot.services.engine import Engine
from bot.services.offers import accept, decline
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.fakes import FakeClock
from tests.scenario import (
    add_agent,
    advance,
    agent_state,
    load_agent,
    load_task,
    new_task,
    ringing,
    sessions_of,
)


async def test_direct_offers_the_longest_idle_agent(engine: Engine, clock: FakeClock) -> None:
    first = await add_agent(engine, 1)
    clock.advance(5)
    await add_agent(engine, 2)
    task = await new_task(engine)
    offers = await ringing(engine, task.id)
    assert [s.agent_id for s in offers] == [first]
    assert (await load_task(engine, task.id)).state is TaskState.RINGING
    assert await agent_state(engine, first) is AgentState.RINGING


async def test_decline_offers_the_task_to_the_next_agent(engine: Engine, clock: FakeClock) -> None:
    first = await add_agent(engine, 1)
    clock.advance(1)
    second = await add_agent(engine, 2)
    task = await new_task(engine)
    [offer] = await ringing(engine, task.id)
    await engine.run(decline, offer.id, first)
    [next_offer] = await ringing(engine, task.id)
    assert next_offer.agent_id == second
    results = {s.agent_id: s.result for s in await sessions_of(engine, task.id)}
    assert results[first] is SessionResult.DECLINED
    assert await agent_state(engine, first) is AgentState.AVAILABLE  # no persistent RONA


async def test_ring_timeout_sets_rona_and_reoffers(engine: Engine, clock: FakeClock) -> None:
    first = await add_agent(engine, 1)
    clock.advance(1)
    second = await add_agent(engine, 2)
    task = await new_task(engine)
    await advance(engine, clock, 29)
    assert [s.agent_id for s in await ringing(engine, task.id)] == [first]
    await advance(engine, clock, 1)
    assert [s.agent_id for s in await ringing(engine, task.id)] == [second]
    assert await agent_state(engine, first) is AgentState.RONA
    agent = await load_agent(engine, first)
    assert len(agent.pending_nar(clock.now())) == 1
    [offer] = await ringing(engine, task.id)
    await engine.run(accept, offer.id, second)
    # RONA lasts the reset time (10 minutes by default), then the agent is available again.
    await advance(engine, clock, 599)
    assert await agent_state(engine, first) is AgentState.RONA
    await advance(engine, clock, 1)
    assert await agent_state(engine, first) is AgentState.AVAILABLE


async def test_manual_rona_reset(engine: Engine, clock: FakeClock) -> None:
    first = await add_agent(engine, 1)
    task = await new_task(engine)
    await advance(engine, clock, 30)
    assert await agent_state(engine, first) is AgentState.RONA
    # The task waits; a reset makes the agent available and the task rings again at once.
    await engine.run(agent_cases.reset_rona, first)
    assert [s.agent_id for s in await ringing(engine, task.id)] == [first]


async def test_persistent_rona_makes_a_decline_set_rona(
    store: SqliteStore,
    clock: FakeClock,
) -> None:
    services = catalog({"id": "sales", "distribution": {"persistent_rona": True}})
    engine = build_engine(store, clock, services)
    first = await add_agent(engine, 1)
    task = await new_task(engine)
    [offer] = await ringing(engine, task.id)
    await engine.run(decline, offer.id, first)
    assert await agent_state(engine, first) is AgentState.RONA


async def test_broadcast_first_accept_wins_others_rescinded_no_rona(
    store: SqliteStore,
    clock: FakeClock,
) -> None:
    services = catalog({"id": "sales", "distribution": {"mode": "broadcast", "broadcast_size": 3}})
    engine = build_engine(store, clock, services)
    ids = [await add_agent(engine, n) for n in range(1, 5)]
    task = await new_task(engine)
    offers = await ringing(engine, task.id)
    assert sorted(s.agent_id for s in offers) == sorted(ids[:3])  # the three longest idle
    winner = offers[1]
    await engine.run(accept, winner.id, winner.agent_id)
    results = {s.agent_id: s.result for s in await sessions_of(engine, task.id)}
    assert results[winner.agent_id] is SessionResult.ACCEPTED
    losers = [s for s in offers if s.id != winner.id]
    assert all(results[s.agent_id] is SessionResult.RESCINDED for s in losers)
    for loser in losers:
        assert await agent_state(engine, loser.agent_id) is AgentState.AVAILABLE
        with pytest.raises(Stale):
            await engine.run(accept, loser.id, loser.agent_id)


async def test_broadcast_timeout_never_sets_rona(
    store: SqliteStore,
    clock: FakeClock,
) -> None:
    services = catalog({"id": "sales", "distribution": {"mode": "broadcast"}})
    engine = build_engine(store, clock, services)
    ids = [await add_agent(engine, n) for n in (1, 2)]
    task = await new_task(engine)
    await advance(engine, clock, 30)
    results = [s.result for s in await sessions_of(engine, task.id) if s.result]
    assert results == [SessionResult.MISSED, SessionResult.MISSED]
    for agent_id in ids:
        assert await agent_state(engine, agent_id) is not AgentState.RONA
    assert len(await ringing(engine, task.id)) == 2  # offered again to both


@pytest.mark.parametrize("blocker", ["capacity", "acw", "off_duty", "unregistered", "rona"])
async def test_unavailable_agents_are_never_offered(
    engine: Engine, clock: FakeClock, blocker: str
) -> None:
    agent = await add_agent(engine, 1, register=blocker != "unregistered")
    if blocker in ("capacity", "acw"):
        first = await new_task(engine)
        [offer] = await ringing(engine, first.id)
        await engine.run(accept, offer.id, agent)
        if blocker == "acw":
            from bot.services.lifecycle import terminate

            await engine.run(terminate, offer.id, agent_id=agent)
    elif blocker == "off_duty":
        await engine.run(agent_cases.set_duty, agent, "Off Duty")
    elif blocker == "rona":
        first = await new_task(engine, name="Other")
        await advance(engine, clock, 30)
        from bot.services.lifecycle import cancel_task

        await engine.run(cancel_task, first.id)
    task = await new_task(engine, name="Second")
    assert await ringing(engine, task.id) == []
    assert (await load_task(engine, task.id)).state is TaskState.QUEUED


async def test_priority_then_age_decides_the_next_task(engine: Engine, clock: FakeClock) -> None:
    agent = await add_agent(engine, 1, register=False)
    old = await new_task(engine, name="Old")
    clock.advance(1)
    urgent = await new_task(engine, name="Urgent", priority=5)
    clock.advance(1)
    await new_task(engine, name="New")
    await engine.run(agent_cases.register, agent, name="A", upn="a1@example.com", object_id=None)
    assert [s.agent_id for s in await ringing(engine, urgent.id)] == [agent]
    assert await ringing(engine, old.id) == []


async def test_a_task_is_never_queued_twice(engine: Engine, clock: FakeClock) -> None:
    first = await add_agent(engine, 1)
    task = await new_task(engine)
    for _ in range(3):
        [offer] = await ringing(engine, task.id)
        await engine.run(decline, offer.id, first)
    all_sessions = await sessions_of(engine, task.id)
    assert len([s for s in all_sessions if s.phase.value == "ringing"]) == 1
    assert (await load_task(engine, task.id)).ringing == [
        s.id for s in all_sessions if s.phase.value == "ringing"
    ]
