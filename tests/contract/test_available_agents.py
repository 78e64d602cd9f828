"""The availability index, on every backend: `agents.available(service, modality, now, limit)`.

Agents are written the way the use cases write them: `Ctx.save_agent`, which keeps the index
in line with the catalog (`bot.domain.agent.availability`). What `available` answers must be
what `can_take` says of every member, longest idle first, at most `limit`, also after a restart
with a different services file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import _startup
from bot.bootstrap import build_engine
from bot.domain.agent import Agent, Engagement, availability, can_take
from bot.domain.routing import idle_key
from bot.domain.service import Catalog, Modality
from bot.domain.task import TaskState
from bot.services.context import Ctx
from bot.services.offers import accept
from bot.services.ports import Store, UnitOfWork
from tests.builders import catalog
from tests.contract.conftest import Backend
from tests.fakes import FakeClock
from tests.scenario import add_agent, load_task, new_task, ringing

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
IM, EMAIL = Modality.IM, Modality.EMAIL
SERVICES = catalog({"id": "sales", "capacity": {"im": 2}}, {"id": "support"})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def member(agent_id: str, idle: float | None = 0,
           services: tuple[str, ...] = ("sales",)) -> Agent:
    return Agent(id=agent_id, name=agent_id.title(), registered=True, services=list(services),
                 idle_since=at(idle) if idle is not None else None)


def work(service_id: str, modality: Modality, phase: str, n: int = 1) -> Engagement:
    return Engagement(f"s-{service_id}-{modality}-{n}", f"t{n}", service_id, modality, phase)


async def add(store: Store, *agents: Agent, services: Catalog = SERVICES) -> None:
    """New agents, indexed as `Ctx.save_agent` indexes them."""
    async with store.unit_of_work() as uow:
        for agent in agents:
            await uow.agents.add(agent)
            await uow.agents.set_availability(agent, availability(agent, services))
        await uow.commit()


async def change(store: Store, agent_id: str, edit: Callable[[Agent], object], *,
                 now: datetime = T0, services: Catalog = SERVICES) -> None:
    async with store.unit_of_work() as uow:
        ctx = Ctx(uow, FakeClock(now), services)
        agent = await ctx.agent(agent_id)
        assert agent is not None
        edit(agent)
        await ctx.save_agent(agent)
        await uow.commit()


async def available(store: Store, service_id: str = "sales", modality: Modality = IM,
                    now: datetime = T0, limit: int = 50) -> list[str]:
    async with store.unit_of_work() as uow:
        found = await uow.agents.available(service_id, modality, now, limit)
        return [a.id for a in found]


async def every_check(store: Store, services: Catalog, now: datetime) -> None:
    """`available` agrees with `can_take` over all members, for every service and modality."""
    async with store.unit_of_work() as uow:
        for service_id in services.services:
            members = await uow.agents.members(service_id)
            for modality in Modality:
                want = sorted((a for a in members
                               if can_take(a, service_id, modality, services, now)),
                              key=idle_key)
                found = await uow.agents.available(service_id, modality, now, 1000)
                assert [a.id for a in found] == [a.id for a in want], (service_id, modality)


async def test_ringing_and_after_call_work_take_an_agent_out_and_back(store: Store) -> None:
    await add(store, member("a1"), member("a2", idle=5))
    assert await available(store) == ["a1", "a2"]
    await change(store, "a1", lambda a: a.engagements.append(work("sales", IM, "ringing")))
    assert await available(store) == ["a2"]
    assert await available(store, modality=EMAIL) == ["a2"]

    def connect(agent: Agent) -> None:
        agent.engagements[0].phase = "connected"

    await change(store, "a1", connect)  # one IM of two in sales
    assert await available(store) == ["a1", "a2"]
    await change(store, "a1", lambda a: setattr(a.engagements[0], "phase", "acw"))
    assert await available(store) == ["a2"]
    await change(store, "a1", lambda a: a.engagements.clear())
    assert await available(store) == ["a1", "a2"]
    await every_check(store, SERVICES, T0)


async def test_connected_work_up_to_the_capacity_of_each_service_and_modality(
        store: Store) -> None:
    await add(store, member("a1", services=("sales", "support")))
    await change(store, "a1", lambda a: a.engagements.append(work("sales", IM, "connected")))
    # sales takes two IM chats, support one: a1 may take another sales chat, and support's
    # email, but not support's IM (busy is judged by the capacity of the chat's own service).
    assert await available(store) == ["a1"]
    assert await available(store, "support", IM) == []
    assert await available(store, "support", EMAIL) == ["a1"]
    await change(store, "a1", lambda a: a.engagements.append(work("sales", IM, "connected", 2)))
    assert await available(store) == []
    assert await available(store, modality=EMAIL) == []  # at sales' IM capacity: busy
    await every_check(store, SERVICES, T0)


async def test_rona_keeps_an_agent_out_until_it_runs_out_with_no_write(store: Store) -> None:
    await add(store, member("a1"), member("a2", idle=5))
    await change(store, "a1", lambda a: setattr(a, "rona_until", at(60)))
    assert await available(store) == ["a2"]
    assert await available(store, now=at(59.999999)) == ["a2"]
    # The RONA timer has not fired yet (the flag is still set): a1 is offerable again anyway.
    assert await available(store, now=at(60)) == ["a1", "a2"]
    assert await available(store, now=at(60), limit=1) == ["a1"]
    await every_check(store, SERVICES, at(30))
    await every_check(store, SERVICES, at(60))


async def test_off_duty_and_unregistered_agents_are_not_available(store: Store) -> None:
    await add(store, member("a1"), member("a2", idle=5), member("a3", idle=9))
    await change(store, "a1", lambda a: setattr(a, "profile", "Off Duty"))
    await change(store, "a2", lambda a: setattr(a, "registered", False))
    assert await available(store) == ["a3"]
    await change(store, "a1", lambda a: setattr(a, "profile", "Duty"))
    assert await available(store) == ["a1", "a3"]
    await every_check(store, SERVICES, T0)


async def test_an_agent_removed_from_a_service_is_not_available_there(store: Store) -> None:
    await add(store, member("a1", services=("sales", "support")), member("a2", idle=5))
    assert await available(store) == ["a1", "a2"]
    assert await available(store, "support") == ["a1"]
    await change(store, "a1", lambda a: setattr(a, "services", ["support"]))
    assert await available(store) == ["a2"]
    assert await available(store, "support") == ["a1"]
    async with store.unit_of_work() as uow:
        assert [a.id for a in await uow.agents.members("sales")] == ["a2"]
    await every_check(store, SERVICES, T0)


async def test_longest_idle_first_never_idle_before_all_ties_by_id_and_the_limit(
        store: Store) -> None:
    await add(store, member("a5", idle=10), member("a4", idle=-30), member("a3", idle=None),
              member("a2", idle=10), member("a1", idle=None), member("a0", idle=-30.000001))
    order = ["a1", "a3", "a0", "a4", "a2", "a5"]
    assert await available(store) == order
    for limit in range(7):
        assert await available(store, limit=limit) == order[:limit]
    # Going idle again (after a chat) moves an agent to the back.
    await change(store, "a1", lambda a: setattr(a, "idle_since", at(20)))
    assert await available(store, limit=3) == ["a3", "a0", "a4"]
    assert await available(store) == ["a3", "a0", "a4", "a2", "a5", "a1"]


async def test_a_unit_of_work_sees_its_own_offers(store: Store) -> None:
    """Dispatch asks again after each offer, before commit: the agents it rang are gone and
    the next ones come, however many the database would list first."""
    await add(store, *(member(f"a{n}", idle=n) for n in range(6)))
    async with store.unit_of_work() as uow:
        ctx = Ctx(uow, FakeClock(T0), SERVICES)
        for n in range(6):
            [agent] = await uow.agents.available("sales", IM, T0, 1)
            assert agent.id == f"a{n}"
            agent.engagements.append(work("sales", IM, "ringing", n))
            await ctx.save_agent(agent)
        assert await uow.agents.available("sales", IM, T0, 5) == []
        await uow.commit()
    assert await available(store) == []


async def test_saving_an_agent_keeps_its_index_and_rows_change_only_with_it(
        backend: Backend, store: Store) -> None:
    await add(store, member("a1"))
    await change(store, "a1", lambda a: setattr(a, "name", "Renamed"))
    await change(store, "a1", lambda a: None)
    assert await available(store) == ["a1"]

    async def plain_save(uow: UnitOfWork) -> None:  # a write that does not index (no catalog)
        agent = await uow.agents.get("a1")
        assert agent is not None
        agent.name = "Again"
        await uow.agents.save(agent)

    async with store.unit_of_work() as uow:
        await plain_save(uow)
        await uow.commit()
    assert await available(store) == ["a1"]
    if backend.name == "sqlite":
        from bot.storage.sqlite import SqliteStore

        assert isinstance(store, SqliteStore)
        before = store.conn.total_changes
        await change(store, "a1", lambda a: setattr(a, "name", "Once more"))
        assert store.conn.total_changes - before == 1  # the agents row, nothing else


async def test_sqlite_reads_a_range_of_the_covering_index(backend: Backend,
                                                         store: Store) -> None:
    if backend.name != "sqlite":
        pytest.skip("SQLite's query plan")
    from bot.storage.sqlite import SqliteStore
    from bot.storage.sqlite_repos import _AVAILABLE

    assert isinstance(store, SqliteStore)
    plan = " | ".join(str(r[3]) for r in await store.conn.execute_fetchall(
        "EXPLAIN QUERY PLAN SELECT id FROM agents WHERE " + _AVAILABLE,
        ("sales", "im", 1, "sales", "im", 0, 1)))
    assert plan.count("USING COVERING INDEX agent_slots_pick") == 2, plan
    assert "SCAN agent_slots" not in plan and "SCAN agents" not in plan, plan


# -- a restart with a different services file ------------------------------------------------------

BEFORE = catalog({"id": "sales", "members": ["a1@example.com", "a2@example.com",
                                             "a3@example.com"]},
                 {"id": "support", "members": ["a3@example.com"]},
                 settings={"profiles": [{"name": "Duty", "on_duty": True},
                                        {"name": "Lunch", "on_duty": False}]})
AFTER = catalog({"id": "sales", "members": ["a1@example.com", "a2@example.com"],
                 "capacity": {"im": 2}},
                {"id": "support", "members": ["a3@example.com"]},
                settings={"profiles": [{"name": "Duty", "on_duty": True},
                                       {"name": "Lunch", "on_duty": True}]})


async def test_the_index_follows_a_changed_services_file_after_a_restart(
        backend: Backend, store: Store) -> None:
    """Capacity raised, a profile now on duty, a member removed: all true at the first offer."""
    clock = FakeClock(T0)
    first = build_engine(store, clock, BEFORE)
    await first.run(_startup)
    a1 = await add_agent(first, 1)
    clock.advance(1)
    a2 = await add_agent(first, 2)
    clock.advance(1)
    a3 = await add_agent(first, 3)
    await first.run(accept, (await ringing(first, (await new_task(first)).id))[0].id, a1)
    await first.run(_set_profile, a2, "Lunch")
    assert await available(store, now=clock.now()) == [a3]

    again = await backend.open()  # the next start: its own connection or client
    second = build_engine(again, clock, AFTER)
    await second.run(_startup)
    await every_check(again, AFTER, clock.now())
    assert await available(again, now=clock.now()) == [a1, a2]  # a3 left sales
    assert await available(again, "support", now=clock.now()) == [a3]
    # The connected a1 (one IM of two now) is offered the next chat: nobody starves.
    task = await new_task(second)
    assert [s.agent_id for s in await ringing(second, task.id)] == [a1]
    assert (await load_task(second, task.id)).state is TaskState.RINGING


async def _set_profile(ctx: Ctx, agent_id: str, profile: str) -> None:
    """Lunch is off duty before the restart (no `set_duty`: it would file a NAR request)."""
    agent = await ctx.agent(agent_id)
    assert agent is not None
    agent.profile = profile
    await ctx.save_agent(agent)


async def test_a_database_from_before_the_index_gets_it_at_the_first_start(
        backend: Backend, store: Store) -> None:
    """Schema 3 adds the index empty; the start-up fills it (here: SQLite, rows dropped)."""
    if backend.name != "sqlite":
        pytest.skip("SQLite's migration")
    from bot.storage.sqlite import SqliteStore

    assert isinstance(store, SqliteStore)
    clock = FakeClock(T0)
    engine = build_engine(store, clock, BEFORE)
    ids = [await add_agent(engine, n) for n in (1, 2, 3)]
    assert await available(store) == ids
    async with store.unit_of_work() as uow:
        await uow.execute("DELETE FROM agent_slots")
        await uow.commit()
    assert await available(store) == []
    await build_engine(await backend.open(), clock, BEFORE).run(_startup)
    assert await available(store) == ids
    await every_check(store, BEFORE, T0)
