"""The use cases through the Engine on every backend, including two app instances racing.

"Two instances" are two stores on the same data (two SQLite connections to one file, or two
CosmosClients on one database), each with its own Engine, sharing the fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from datetime import timedelta

import pytest

from bot.bootstrap import build_engine
from bot.domain import events as ev
from bot.domain.agent import AgentState
from bot.domain.customer import Customer
from bot.domain.errors import Stale
from bot.domain.service import Catalog
from bot.domain.session import Phase, Session, SessionResult
from bot.domain.task import TaskState
from bot.services.context import Ctx
from bot.services.engine import Engine
from bot.services.external_tasks import Created, ExternalRequest, create_external_task
from bot.services.lifecycle import expire_task
from bot.services.offers import accept
from bot.services.ports import ConflictError, Store
from tests.builders import catalog
from tests.contract.conftest import Backend
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


async def event_names(engine: Engine, task_id: str) -> list[str]:
    async def load(ctx: Ctx) -> list[str]:
        return [e.name for e in await ctx.uow.events.for_task(task_id)]
    return await engine.run(load)


async def two_engines(backend: Backend, store: Store, clock: FakeClock,
                      services: Catalog) -> tuple[Engine, Engine]:
    return build_engine(store, clock, services), build_engine(await backend.open(), clock, services)


async def test_two_instances_creating_with_one_idempotency_key_queue_one_task(
        backend: Backend, store: Store, clock: FakeClock, services: Catalog) -> None:
    first, second = await two_engines(backend, store, clock, services)
    request = ExternalRequest(title="Call back about 4711", customer=Customer(name="Jane"))

    async def create(engine: Engine, key_name: str, key: str) -> Created:
        return await engine.run(create_external_task, "sales", request, key_name=key_name,
                                idempotency_key=key)

    both = await asyncio.gather(create(first, "crm", "run-1"), create(second, "crm", "run-1"))
    assert both[0].task.id == both[1].task.id
    assert sorted(c.replayed for c in both) == [False, True]
    assert await event_names(first, both[0].task.id) == [ev.TASK_CREATED]
    # The same value from another API key is another request.
    other = await create(first, "ops", "run-1")
    assert other.task.id != both[0].task.id and not other.replayed
    if backend.name == "cosmos":  # (SQLite: the first's insert takes the file's write lock at
        # its next read, so the other instance waits for it and then finds its task.)
        # One instance has looked (no task yet) when the other creates it: its insert
        # conflicts, and the engine's retry finds the other's task.
        with pytest.raises(ConflictError):
            async with store.unit_of_work() as uow:
                mine = await create_external_task(Ctx(uow, clock, services), "sales", request,
                                                  key_name="crm", idempotency_key="run-2")
                assert not mine.replayed
                theirs = await create(second, "crm", "run-2")
                await uow.commit()
        again = await create(first, "crm", "run-2")
        assert (again.task.id, again.replayed) == (theirs.task.id, True)
        assert await event_names(first, theirs.task.id) == [ev.TASK_CREATED]


async def test_a_task_that_lists_an_offer_not_stored_yet_expires_only_once_it_is(
        engine: Engine, clock: FakeClock, services: Catalog) -> None:
    agent = await add_agent(engine, 1, register=False)  # nobody takes the task meanwhile
    task = await new_task(engine)

    # What another instance's commit shows for a moment on Cosmos DB: the task lists the offer
    # it makes, the session is not written yet.
    async def list_an_offer(ctx: Ctx) -> None:
        listed = await ctx.task(task.id)
        listed.state = TaskState.RINGING
        listed.ringing.append("s-in-flight")
        await ctx.uow.tasks.save(listed)

    async def store_it(ctx: Ctx) -> None:
        listed = await ctx.task(task.id)
        await ctx.uow.sessions.add(Session(
            id="s-in-flight", task_id=task.id, agent_id=agent, service_id=task.service_id,
            modality=task.modality, offered_at=ctx.now, queued_at=listed.enqueued_at,
            ring_until=ctx.now + timedelta(seconds=30), service_name="Sales",
            customer=listed.customer, customer_label=listed.customer_label))

    await engine.run(list_an_offer)
    clock.advance(services.service("sales").distribution.max_queue_time.total_seconds())
    with pytest.raises(ConflictError):
        await engine.run(expire_task, task.id)
    assert (await load_task(engine, task.id)).state is TaskState.RINGING  # nothing changed
    await engine.run(store_it)  # the other commit is through
    await engine.run(expire_task, task.id)
    expired = await load_task(engine, task.id)
    assert (expired.state, expired.ringing) == (TaskState.EXPIRED, [])
    [offer] = await sessions_of(engine, task.id)
    assert (offer.phase, offer.result) == (Phase.ENDED, SessionResult.EXPIRED)


async def test_create_offer_accept(engine: Engine, clock: FakeClock) -> None:
    agent = await add_agent(engine, 1)
    task = await new_task(engine)
    [offer] = await ringing(engine, task.id)
    assert offer.agent_id == agent
    assert await agent_state(engine, agent) is AgentState.RINGING
    clock.advance(4)
    await engine.run(accept, offer.id, agent)
    loaded = await load_task(engine, task.id)
    assert (loaded.state, loaded.agent_id, loaded.session_id) == (
        TaskState.CONNECTED, agent, offer.id)
    [session] = await sessions_of(engine, task.id)
    assert (session.phase, session.result) == (Phase.CONNECTED, SessionResult.ACCEPTED)
    assert await agent_state(engine, agent) is AgentState.BUSY
    names = await event_names(engine, task.id)
    assert names[:2] == [ev.TASK_CREATED, ev.OFFER_CREATED]
    assert {ev.OFFER_ACCEPTED, ev.SESSION_CONNECTED} <= set(names)

    async def everything(ctx: Ctx) -> list[int]:
        return [e.seq for e in await ctx.uow.events.after(0, 1000)]
    seqs = await engine.run(everything)
    assert seqs == list(range(1, len(seqs) + 1))


async def test_two_instances_accepting_one_offer_connect_it_once(
        backend: Backend, store: Store, clock: FakeClock, services: Catalog) -> None:
    first, second = await two_engines(backend, store, clock, services)
    agent = await add_agent(first, 1)
    task = await new_task(first)
    [offer] = await ringing(second, task.id)
    results = await asyncio.gather(first.run(accept, offer.id, agent),
                                   second.run(accept, offer.id, agent), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Session", "Stale"]
    [session] = await sessions_of(first, task.id)
    assert (session.phase, session.result) == (Phase.CONNECTED, SessionResult.ACCEPTED)
    loaded = await load_agent(second, agent)
    assert [(e.session_id, e.phase) for e in loaded.engagements] == [(offer.id, "connected")]
    names = Counter(await event_names(first, task.id))
    assert (names[ev.OFFER_ACCEPTED], names[ev.SESSION_CONNECTED]) == (1, 1)


async def test_two_agents_racing_for_a_broadcast_offer_one_wins(
        backend: Backend, store: Store, clock: FakeClock) -> None:
    services = catalog({"id": "sales", "distribution": {"mode": "broadcast"}})
    first, second = await two_engines(backend, store, clock, services)
    agents = [await add_agent(first, n) for n in (1, 2)]
    task = await new_task(first)
    offers = {s.agent_id: s for s in await ringing(first, task.id)}
    assert sorted(offers) == sorted(agents)
    results = await asyncio.gather(
        first.run(accept, offers[agents[0]].id, agents[0]),
        second.run(accept, offers[agents[1]].id, agents[1]), return_exceptions=True)
    winners = [r for r in results if isinstance(r, Session)]
    assert len(winners) == 1 and all(isinstance(r, Session | Stale) for r in results)
    winner = winners[0].agent_id
    loaded = await load_task(second, task.id)
    assert (loaded.state, loaded.agent_id) == (TaskState.CONNECTED, winner)
    results_by_agent = {s.agent_id: s.result for s in await sessions_of(first, task.id)}
    loser = next(a for a in agents if a != winner)
    assert results_by_agent == {winner: SessionResult.ACCEPTED, loser: SessionResult.RESCINDED}
    assert await agent_state(first, loser) is AgentState.AVAILABLE
    assert await agent_state(second, winner) is AgentState.BUSY


async def test_a_ring_timeout_fired_by_two_instances_fires_once(
        backend: Backend, store: Store, clock: FakeClock, services: Catalog) -> None:
    first, second = await two_engines(backend, store, clock, services)
    one, two, task, _ = await first_of_two_rings(first, clock)
    clock.advance(30)
    fired = await asyncio.gather(first.jobs.fire_due(), second.jobs.fire_due())
    assert sum(fired) == 1
    results = [s.result for s in await sessions_of(second, task.id)]
    assert results.count(SessionResult.RONA) == 1
    assert [s.agent_id for s in await ringing(second, task.id)] == [two]
    assert Counter(await event_names(first, task.id))[ev.OFFER_TIMED_OUT] == 1
    assert await agent_state(second, one) is AgentState.RONA
    assert await first.jobs.fire_due() + await second.jobs.fire_due() == 0


@pytest.mark.parametrize("instances", [2, 3])
async def test_many_accepts_and_declines_keep_every_invariant(
        backend: Backend, store: Store, clock: FakeClock, instances: int) -> None:
    """Several instances accept at once what rings; no task or agent is ever doubly engaged."""
    services = catalog({"id": "sales", "distribution": {"mode": "broadcast"}})
    engines = [build_engine(store, clock, services)]
    engines += [build_engine(await backend.open(), clock, services) for _ in range(instances - 1)]
    agents = [await add_agent(engines[0], n) for n in range(1, 4)]
    tasks = [await new_task(engines[n % instances], name=f"Customer {n}") for n in range(3)]

    async def take(n: int, agent: str) -> None:
        engine = engines[n % instances]
        for task in tasks:
            for offer in await ringing(engine, task.id):
                if offer.agent_id == agent:
                    with contextlib.suppress(Stale):  # another agent was quicker
                        await engine.run(accept, offer.id, agent)
                    return

    await asyncio.gather(*(take(n, a) for n, a in enumerate(agents)))
    connected: list[str] = []
    for task in tasks:
        loaded = await load_task(engines[0], task.id)
        sessions = await sessions_of(engines[-1], task.id)
        accepted = [s for s in sessions if s.result is SessionResult.ACCEPTED]
        assert len(accepted) == (1 if loaded.state is TaskState.CONNECTED else 0)
        if accepted:
            assert loaded.agent_id == accepted[0].agent_id
            connected.append(accepted[0].agent_id)
    assert len(connected) == len(set(connected))  # nobody took two tasks (capacity 1)
    for agent in agents:
        loaded_agent = await load_agent(engines[0], agent)
        assert len([e for e in loaded_agent.engagements if e.phase == "connected"]) <= 1
