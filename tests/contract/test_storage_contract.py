"""One storage contract, run on every backend: SQLite and Cosmos DB (on the emulator).

Each test talks only to the ports (`Store`, `UnitOfWork` and its repositories), so whatever
passes here on SQLite must pass on Cosmos DB. A write conflict may surface at the write or at
`commit()` (Cosmos DB flushes at commit), so conflicts are expected around both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from bot.domain.agent import Agent, Engagement
from bot.domain.customer import Customer
from bot.domain.events import Event
from bot.domain.message import ChatMessage, Kind, Sender
from bot.domain.service import Modality
from bot.domain.session import Phase, Session, SessionResult
from bot.domain.task import Task, TaskResult, TaskState
from bot.domain.timers import Timer
from bot.services.ports import ConflictError, SessionSearch, Store, UnitOfWork
from tests.contract.conftest import Backend

R = TypeVar("R")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_agent(agent_id: str, services: tuple[str, ...] = ("sales",), *,
               registered: bool = True) -> Agent:
    return Agent(id=agent_id, name=agent_id.title(), registered=registered,
                 services=list(services), idle_since=T0)


def make_task(task_id: str, service: str = "sales", *, priority: int = 0, enqueued: float = 0,
              state: TaskState = TaskState.QUEUED) -> Task:
    return Task(id=task_id, service_id=service, modality=Modality.IM, created_at=at(enqueued),
                enqueued_at=at(enqueued), customer=Customer(name="Jane Doe", email="j@x.org"),
                customer_label="Jane Doe", content={"text": "Hello"}, priority=priority,
                state=state, call_flow=[service])


def make_session(session_id: str, *, task_id: str = "t1", agent_id: str = "a1",
                 service: str = "sales", offered: float = 0, phase: Phase = Phase.RINGING,
                 label: str = "Jane Doe", tags: tuple[str, ...] = (),
                 chat_id: str | None = None, card_id: str | None = None,
                 connected: float | None = None) -> Session:
    return Session(id=session_id, task_id=task_id, agent_id=agent_id, service_id=service,
                   modality=Modality.IM, offered_at=at(offered), queued_at=at(offered - 5),
                   ring_until=at(offered + 30), service_name=service.title(),
                   customer_label=label, phase=phase, tags=list(tags), chat_id=chat_id,
                   card_id=card_id, connected_at=at(connected) if connected is not None else None)


async def write(store: Store, action: Callable[[UnitOfWork], Awaitable[R]]) -> R:
    async with store.unit_of_work() as uow:
        result = await action(uow)
        await uow.commit()
    return result


async def read(store: Store, action: Callable[[UnitOfWork], Awaitable[R]]) -> R:
    async with store.unit_of_work() as uow:
        return await action(uow)


async def add_all(store: Store, *entities: Agent | Task | Session) -> None:
    async def add(uow: UnitOfWork) -> None:
        for entity in entities:
            if isinstance(entity, Agent):
                await uow.agents.add(entity)
            elif isinstance(entity, Task):
                await uow.tasks.add(entity)
            else:
                await uow.sessions.add(entity)
    await write(store, add)


# -- entities ----------------------------------------------------------------------------------

async def test_added_entities_read_back_equal_with_version_1(store: Store) -> None:
    agent = make_agent("29:a/1?#x")  # characters Cosmos DB forbids in ids
    agent.engagements.append(Engagement("s1", "t1", "sales", Modality.IM, "ringing"))
    task = make_task("t1")
    session = make_session("s1", tags=("vip",), connected=3)
    await add_all(store, agent, task, session)
    assert (agent.version, task.version, session.version) == (1, 1, 1)

    async def load(uow: UnitOfWork) -> tuple[Any, ...]:
        return (await uow.agents.get(agent.id), await uow.tasks.get("t1"),
                await uow.sessions.get("s1"))

    assert await read(store, load) == (agent, task, session)


async def test_missing_items_are_none(store: Store) -> None:
    async def load(uow: UnitOfWork) -> list[Any]:
        return [await uow.agents.get("nobody"), await uow.tasks.get("none"),
                await uow.sessions.get("none"), await uow.timers.get("ring_timeout:none"),
                await uow.sessions.by_chat("none"), await uow.sessions.by_card("none")]

    assert await read(store, load) == [None] * 6


async def test_save_bumps_the_version_and_a_stale_save_conflicts(store: Store) -> None:
    await add_all(store, make_task("t1"))
    stale = await read(store, lambda uow: uow.tasks.get("t1"))
    assert stale is not None

    async def ring(uow: UnitOfWork) -> Task:
        task = await uow.tasks.get("t1")
        assert task is not None
        task.state = TaskState.RINGING
        await uow.tasks.save(task)
        await uow.tasks.save(task)  # twice in one unit of work: version 3
        return task

    assert (await write(store, ring)).version == 3
    stale.state = TaskState.CANCELLED
    with pytest.raises(ConflictError):
        await write(store, lambda uow: uow.tasks.save(stale))
    current = await read(store, lambda uow: uow.tasks.get("t1"))
    assert current is not None
    assert (current.state, current.version) == (TaskState.RINGING, 3)


async def test_adding_an_existing_id_conflicts(store: Store) -> None:
    await add_all(store, make_agent("a1"), make_task("t1"), make_session("s1"))
    for entity in (make_agent("a1"), make_task("t1"), make_session("s1")):
        with pytest.raises(ConflictError):
            await add_all(store, entity)


async def test_a_unit_of_work_without_commit_writes_nothing(store: Store) -> None:
    async with store.unit_of_work() as uow:
        await uow.tasks.add(make_task("t1"))
        await uow.agents.add(make_agent("a1"))
        await uow.timers.arm(Timer("ring_timeout", "s1", at(30)))
    assert await read(store, lambda uow: uow.tasks.get("t1")) is None
    assert await read(store, lambda uow: uow.timers.get("ring_timeout:s1")) is None


async def test_a_conflict_late_in_a_commit_leaves_nothing_behind(backend: Backend,
                                                                 store: Store) -> None:
    """The deciding row lost a race: the writes made before it in that unit of work vanish."""
    other = await backend.open()  # a second instance on the same data
    await add_all(store, make_agent("a1"), make_task("t1"))
    async with store.unit_of_work() as mine:
        agent = await mine.agents.get("a1")
        task = await mine.tasks.get("t1")
        assert agent is not None and task is not None

        async def take(uow: UnitOfWork) -> None:
            theirs = await uow.tasks.get("t1")
            assert theirs is not None
            theirs.state = TaskState.CANCELLED
            await uow.tasks.save(theirs)

        await write(other, take)
        with pytest.raises(ConflictError):
            agent.profile = "Busy elsewhere"
            await mine.agents.save(agent)
            await mine.timers.arm(Timer("rona_reset", "a1", at(60)))
            task.state = TaskState.RINGING
            await mine.tasks.save(task)
            await mine.commit()
    fresh = await read(store, lambda uow: uow.agents.get("a1"))
    assert fresh is not None and (fresh.profile, fresh.version) == ("Duty", 1)
    assert await read(store, lambda uow: uow.timers.get("rona_reset:a1")) is None
    won = await read(store, lambda uow: uow.tasks.get("t1"))
    assert won is not None and won.state is TaskState.CANCELLED


async def test_identity_map_gives_one_object_per_entity(store: Store) -> None:
    await add_all(store, make_agent("a1"), make_task("t1"), make_session("s1"))

    async def check(uow: UnitOfWork) -> None:
        agent = await uow.agents.get("a1")
        assert agent is await uow.agents.get("a1")
        assert (await uow.agents.members("sales"))[0] is agent
        task = await uow.tasks.get("t1")
        assert (await uow.tasks.queued("sales", 10))[0] is task
        assert (await uow.tasks.live())[0] is task
        session = (await uow.sessions.for_task("t1"))[0]
        assert session is await uow.sessions.get("s1")
        assert (await uow.sessions.for_agent("a1", 10))[0] is session

    await read(store, check)


async def test_a_unit_of_work_sees_its_own_writes(store: Store) -> None:
    await add_all(store, make_task("old", enqueued=0), make_agent("a1"))

    async def check(uow: UnitOfWork) -> None:
        await uow.tasks.add(make_task("new", enqueued=5))
        assert [t.id for t in await uow.tasks.queued("sales", 10)] == ["old", "new"]
        old = await uow.tasks.get("old")
        assert old is not None
        old.state = TaskState.RINGING
        await uow.tasks.save(old)
        assert [t.id for t in await uow.tasks.queued("sales", 10)] == ["new"]
        assert await uow.tasks.position(old) == 1
        agent = await uow.agents.get("a1")
        assert agent is not None
        agent.registered = False
        await uow.agents.save(agent)
        assert await uow.agents.members("sales") == []
        await uow.agents.add(make_agent("a2"))
        assert [a.id for a in await uow.agents.registered()] == ["a2"]
        await uow.sessions.add(make_session("s1", chat_id="chat-1", phase=Phase.CONNECTED))
        found = await uow.sessions.by_chat("chat-1")
        assert found is not None and found.id == "s1"
        await uow.timers.arm(Timer("ring_timeout", "s1", at(30)))
        assert [t.id for t in await uow.timers.due(at(30), 10, ["ring_timeout"])] == [
            "ring_timeout:s1"]
        assert await uow.timers.next_due_at(["ring_timeout"]) == at(30)
        await uow.timers.cancel("ring_timeout:s1")
        assert await uow.timers.get("ring_timeout:s1") is None
        assert await uow.timers.due(at(30), 10, ["ring_timeout"]) == []

    await write(store, check)


# -- agents --------------------------------------------------------------------------------------

async def test_members_are_the_registered_agents_of_a_service(store: Store) -> None:
    await add_all(store, make_agent("a1"), make_agent("a2", registered=False),
                  make_agent("a3", ("support",)), make_agent("a4", ("sales", "support")))

    async def members(uow: UnitOfWork) -> tuple[set[str], set[str], set[str]]:
        return ({a.id for a in await uow.agents.members("sales")},
                {a.id for a in await uow.agents.members("support")},
                {a.id for a in await uow.agents.registered()})

    assert await read(store, members) == ({"a1", "a4"}, {"a3", "a4"}, {"a1", "a3", "a4"})

    async def move(uow: UnitOfWork) -> None:
        agent = await uow.agents.get("a1")
        assert agent is not None
        agent.services = ["support"]
        await uow.agents.save(agent)

    await write(store, move)
    assert await read(store, members) == ({"a4"}, {"a1", "a3", "a4"}, {"a1", "a3", "a4"})


# -- tasks ---------------------------------------------------------------------------------------

async def test_queued_orders_by_priority_then_age(store: Store) -> None:
    await add_all(
        store,
        make_task("old", enqueued=0), make_task("urgent", priority=5, enqueued=20),
        make_task("newer", enqueued=10), make_task("urgent-old", priority=5, enqueued=15),
        make_task("ringing", enqueued=1, state=TaskState.RINGING),
        make_task("elsewhere", "support", enqueued=2),
        make_task("connected", enqueued=3, state=TaskState.CONNECTED),
        make_task("done", enqueued=4, state=TaskState.DONE))

    async def queued(uow: UnitOfWork) -> tuple[list[str], list[str], list[str]]:
        return ([t.id for t in await uow.tasks.queued("sales", 10)],
                [t.id for t in await uow.tasks.queued("sales", 2)],
                [t.id for t in await uow.tasks.queued("support", 10)])

    assert await read(store, queued) == (
        ["urgent-old", "urgent", "old", "newer"], ["urgent-old", "urgent"], ["elsewhere"])


async def test_position_counts_waiting_tasks_ahead(store: Store) -> None:
    tasks = [make_task("a", enqueued=0, state=TaskState.RINGING), make_task("b", enqueued=1),
             make_task("c", enqueued=2), make_task("vip", priority=3, enqueued=3),
             make_task("gone", enqueued=-1, state=TaskState.CANCELLED),
             make_task("other", "support", enqueued=-2)]
    await add_all(store, *tasks)

    async def positions(uow: UnitOfWork) -> dict[str, int]:
        found = {}
        for task_id in ("a", "b", "c", "vip", "other"):
            task = await uow.tasks.get(task_id)
            assert task is not None
            found[task_id] = await uow.tasks.position(task)
        return found

    assert await read(store, positions) == {"vip": 1, "a": 2, "b": 3, "c": 4, "other": 1}


async def test_queue_membership_follows_every_transition(store: Store) -> None:
    await add_all(store, make_task("t1"), make_task("t2", enqueued=1))

    async def step(uow: UnitOfWork, change: Callable[[Task], None]) -> None:
        task = await uow.tasks.get("t1")
        assert task is not None
        change(task)
        await uow.tasks.save(task)

    async def queues(uow: UnitOfWork) -> tuple[list[str], list[str]]:
        return ([t.id for t in await uow.tasks.queued("sales", 10)],
                [t.id for t in await uow.tasks.queued("support", 10)])

    def ring(task: Task) -> None:
        task.state = TaskState.RINGING

    def connect(task: Task) -> None:
        task.state = TaskState.CONNECTED

    def transfer(task: Task) -> None:
        task.requeue("support", at(50))

    def finish(task: Task) -> None:
        task.finish(TaskState.CANCELLED, TaskResult.CANCELLED, at(60))

    await write(store, lambda uow: step(uow, ring))
    assert await read(store, queues) == (["t2"], [])
    await write(store, lambda uow: step(uow, connect))
    assert await read(store, queues) == (["t2"], [])
    await write(store, lambda uow: step(uow, transfer))
    assert await read(store, queues) == (["t2"], ["t1"])
    t1 = await read(store, lambda uow: uow.tasks.get("t1"))
    assert t1 is not None and await read(store, lambda uow: uow.tasks.position(t1)) == 1
    await write(store, lambda uow: step(uow, finish))
    assert await read(store, queues) == (["t2"], [])
    live = await read(store, lambda uow: uow.tasks.live())
    assert [t.id for t in live] == ["t2"]


async def test_live_tasks_are_the_unfinished_ones(store: Store) -> None:
    states = list(TaskState)
    await add_all(store, *(make_task(f"t-{s.value}", enqueued=i, state=s)
                          for i, s in enumerate(states)))
    live = await read(store, lambda uow: uow.tasks.live())
    assert {t.id for t in live} == {f"t-{s.value}" for s in states if not s.finished}


# -- sessions ------------------------------------------------------------------------------------

async def test_for_task_lists_a_tasks_offers_oldest_first(store: Store) -> None:
    await add_all(store, make_session("s2", offered=10), make_session("s1", offered=0),
                  make_session("s3", offered=20, agent_id="a2"),
                  make_session("x", task_id="t2", offered=5))
    found = await read(store, lambda uow: uow.sessions.for_task("t1"))
    assert [s.id for s in found] == ["s1", "s2", "s3"]


async def test_for_agent_finds_email_phone_subject_and_filters(store: Store) -> None:
    mail = make_session("mail", task_id="t1", offered=100, label="Jane Doe")
    mail.modality = Modality.EMAIL
    mail.customer = Customer(name="Jane Doe", email="jane@example.net", phone="+41 44 555 01 23")
    mail.subject = "Refund for order 4711"
    mail.result = SessionResult.ACCEPTED
    chat = make_session("chat", task_id="t2", offered=50, label="Bob")
    chat.result = SessionResult.DECLINED
    old = make_session("old", task_id="t3", offered=-86_400 * 10, label="Old")
    old.result = SessionResult.RONA
    gone = make_session("gone", task_id="t4", offered=10, label="")
    gone.customer = None  # context removed: its details are no longer searchable
    gone.subject = ""
    await add_all(store, mail, chat, old, gone)

    async def find(**where: Any) -> list[str]:
        query = SessionSearch(**where)
        found = await read(store, lambda uow: uow.sessions.for_agent("a1", 10, 0, query))
        return [s.id for s in found]

    for text in ("jane@example.net", "+41 44 555", "order 4711", "REFUND FOR"):
        assert await find(text=text) == ["mail"], text
    assert await find(results=frozenset({"accepted", "declined"})) == ["mail", "chat"]
    assert await find(results=frozenset({"rona", "missed"})) == ["old"]
    assert await find(modality="email") == ["mail"]
    assert await find(since=at(0)) == ["mail", "chat", "gone"]
    assert await find(text="jane", modality="im") == []


async def test_for_agent_pages_newest_first_and_searches(store: Store) -> None:
    sessions = [make_session(f"s{i}", task_id=f"t{i}", offered=i * 10, label=f"Customer {i}")
                for i in range(7)]
    sessions[2].tags = ["VIP", "Billing"]
    sessions[5].customer_label = "Vipul Shah"
    sessions.append(make_session("same-time", task_id="tx", offered=30, label="Tie"))
    sessions.append(make_session("s100_%", task_id="ty", offered=-10, label="50% off_sale"))
    sessions.append(make_session("other", task_id="tz", agent_id="a2", offered=100,
                                 label="VIP too"))
    await add_all(store, *sessions)

    async def page(limit: int, offset: int = 0, query: str = "") -> list[str]:
        found = await read(store, lambda uow: uow.sessions.for_agent("a1", limit, offset, query))
        return [s.id for s in found]

    assert await page(3) == ["s6", "s5", "s4"]
    assert await page(3, 3) == ["s3", "same-time", "s2"]
    assert await page(3, 6) == ["s1", "s0", "s100_%"]
    assert await page(3, 9) == []
    assert await page(10, 0, " vip ") == ["s5", "s2"]
    assert await page(1, 1, "VIP") == ["s2"]
    assert await page(10, 0, "billing") == ["s2"]
    assert await page(10, 0, "sales") == [s.id for s in sorted(
        sessions[:-1], key=lambda s: (-s.offered_at.timestamp(), s.id))]
    assert await page(10, 0, "%") == ["s100_%"]
    assert await page(10, 0, "_s") == ["s100_%"]
    assert await page(10, 0, "nothing like it") == []


async def test_connected_before_finds_long_connected_sessions(store: Store) -> None:
    await add_all(
        store,
        make_session("old", phase=Phase.CONNECTED, connected=0),
        make_session("older", task_id="t2", phase=Phase.CONNECTED, connected=-50),
        make_session("recent", task_id="t3", phase=Phase.CONNECTED, connected=100),
        make_session("ended", task_id="t4", phase=Phase.ENDED, connected=-100),
        make_session("ringing", task_id="t5"))
    found = await read(store, lambda uow: uow.sessions.connected_before(at(60)))
    assert sorted(s.id for s in found) == ["old", "older"]


async def test_by_chat_prefers_the_connected_session_then_the_latest(store: Store) -> None:
    await add_all(store, make_session("s1", offered=0), make_session("s2", offered=10),
                  make_session("s3", offered=20), make_session("s4", offered=30))

    async def update(session_id: str, **changes: Any) -> None:
        async def apply(uow: UnitOfWork) -> None:
            session = await uow.sessions.get(session_id)
            assert session is not None
            for name, value in changes.items():
                setattr(session, name, value)
            await uow.sessions.save(session)
        await write(store, apply)

    async def current(chat_id: str = "chat-1") -> str | None:
        found = await read(store, lambda uow: uow.sessions.by_chat(chat_id))
        return found.id if found else None

    assert await current() is None
    for session_id in ("s1", "s2", "s3"):  # accepted, and their chat opened (as chat_opened)
        await update(session_id, phase=Phase.CONNECTED, chat_id="chat-1")
    await update("s4", phase=Phase.CONNECTED, chat_id="chat-2")
    await update("s1", phase=Phase.ENDED)
    await update("s3", phase=Phase.ACW)
    assert await current() == "s2"  # the one still connected, though not the latest
    assert await current("chat-2") == "s4"
    await update("s2", phase=Phase.ENDED, result=SessionResult.ACCEPTED)
    assert await current() == "s3"  # none connected: the latest
    await update("s3", relayed_seq=4)
    assert await current() == "s3"
    assert await current("chat-3") is None


async def test_by_card_finds_the_session_of_an_invitation_card(store: Store) -> None:
    await add_all(store, make_session("s1", card_id="card-1"), make_session("s2"))

    async def set_card(uow: UnitOfWork) -> None:
        session = await uow.sessions.get("s2")
        assert session is not None
        session.card_id = "card-2"
        await uow.sessions.save(session)

    await write(store, set_card)
    for card_id, expected in (("card-1", "s1"), ("card-2", "s2"), ("card-3", None)):
        found = await read(store, lambda uow, c=card_id: uow.sessions.by_card(c))
        assert (found.id if found else None) == expected


# -- events ------------------------------------------------------------------------------------

async def test_events_are_numbered_in_order_across_units_of_work(store: Store) -> None:
    def event(name: str, task_id: str | None, **data: Any) -> Event:
        return Event(name=name, at=at(len(name)), task_id=task_id, agent_id="a1",
                     service_id="sales", data=data)

    first = [event("task.created", "t1", modality="im"), event("offer.created", "t1"),
             event("agent.state_changed", None, state="ringing")]
    second = [event("task.created", "t2"), event("offer.accepted", "t1", n=1)]

    async def append(uow: UnitOfWork, events: list[Event]) -> None:
        for item in events:
            await uow.events.append(item)

    await write(store, lambda uow: append(uow, first))
    await write(store, lambda uow: append(uow, second))
    everything = [*first, *second]
    assert [e.seq for e in everything] == [1, 2, 3, 4, 5]
    assert await read(store, lambda uow: uow.events.after(0, 100)) == everything
    assert await read(store, lambda uow: uow.events.after(2, 2)) == everything[2:4]
    assert await read(store, lambda uow: uow.events.after(5, 10)) == []
    t1 = await read(store, lambda uow: uow.events.for_task("t1"))
    assert [(e.name, e.seq) for e in t1] == [
        ("task.created", 1), ("offer.created", 2), ("offer.accepted", 5)]
    assert t1[2].data == {"n": 1}
    assert await read(store, lambda uow: uow.events.for_task("t3")) == []


# -- timers ------------------------------------------------------------------------------------

async def test_arm_creates_or_moves_a_timer_keeping_a_running_jobs_lease(store: Store) -> None:
    await write(store, lambda uow: uow.timers.arm(
        Timer("ring_timeout", "s1", at(30), data={"n": 1})))
    timer = await read(store, lambda uow: uow.timers.get("ring_timeout:s1"))
    assert timer == Timer("ring_timeout", "s1", at(30), None, 0, {"n": 1}, 1)

    async def lease(uow: UnitOfWork) -> Timer:
        current = await uow.timers.get("ring_timeout:s1")
        assert current is not None
        current.lease_until = at(60)
        current.attempts += 1
        await uow.timers.save(current)
        return current

    leased = await write(store, lease)
    assert (leased.version, leased.attempts) == (2, 1)
    assert await read(store, lambda uow: uow.timers.get("ring_timeout:s1")) == leased
    await write(store, lambda uow: uow.timers.arm(Timer("ring_timeout", "s1", at(90))))
    moved = await read(store, lambda uow: uow.timers.get("ring_timeout:s1"))
    assert moved == Timer("ring_timeout", "s1", at(90), at(60), 0, {}, 3)
    assert await read(store, lambda uow: uow.timers.due(at(70), 10, ["ring_timeout"])) == []
    assert await read(store, lambda uow: uow.timers.next_due_at(["ring_timeout"])) == at(90)


async def test_cancel_removes_a_timer_and_ignores_a_missing_one(store: Store) -> None:
    await write(store, lambda uow: uow.timers.arm(Timer("acw_end", "s1", at(20))))
    await write(store, lambda uow: uow.timers.cancel("acw_end:s1"))
    await write(store, lambda uow: uow.timers.cancel("acw_end:s1"))
    await write(store, lambda uow: uow.timers.cancel("acw_end:never"))
    assert await read(store, lambda uow: uow.timers.get("acw_end:s1")) is None


async def test_stale_timer_save_and_delete_conflict(store: Store) -> None:
    await write(store, lambda uow: uow.timers.arm(Timer("ring_timeout", "s1", at(30))))
    stale = await read(store, lambda uow: uow.timers.get("ring_timeout:s1"))
    assert stale is not None
    await write(store, lambda uow: uow.timers.arm(Timer("ring_timeout", "s1", at(40))))
    with pytest.raises(ConflictError):
        await write(store, lambda uow: uow.timers.delete(stale))
    with pytest.raises(ConflictError):
        stale.lease_until = at(100)
        await write(store, lambda uow: uow.timers.save(stale))
    current = await read(store, lambda uow: uow.timers.get("ring_timeout:s1"))
    assert current is not None and (current.due_at, current.version) == (at(40), 2)
    await write(store, lambda uow: uow.timers.delete(current))
    assert await read(store, lambda uow: uow.timers.get("ring_timeout:s1")) is None
    with pytest.raises(ConflictError):  # deleted elsewhere meanwhile
        await write(store, lambda uow: uow.timers.delete(current))


async def test_due_filters_by_time_kind_and_lease(store: Store) -> None:
    timers = [Timer("ring_timeout", "late", at(20)), Timer("ring_timeout", "early", at(5)),
              Timer("ring_timeout", "future", at(100)), Timer("acw_end", "s1", at(1)),
              Timer("sync_card", "leased", at(2), lease_until=at(50)),
              Timer("sync_card", "lease-over", at(3), lease_until=at(10))]

    async def arm_all(uow: UnitOfWork) -> None:
        for timer in timers:
            await uow.timers.arm(timer)

    async def lease(uow: UnitOfWork) -> None:  # a claim sets a lease
        for timer_id, until in (("sync_card:leased", at(50)), ("sync_card:lease-over", at(10))):
            current = await uow.timers.get(timer_id)
            assert current is not None
            current.lease_until = until
            await uow.timers.save(current)

    await write(store, arm_all)
    await write(store, lease)

    async def due(now: float, kinds: list[str], limit: int = 10) -> list[str]:
        found = await read(store, lambda uow: uow.timers.due(at(now), limit, kinds))
        return [t.id for t in found]

    everything = ["ring_timeout", "acw_end", "sync_card"]
    assert await due(30, everything) == [
        "acw_end:s1", "sync_card:lease-over", "ring_timeout:early", "ring_timeout:late"]
    assert await due(30, ["ring_timeout"]) == ["ring_timeout:early", "ring_timeout:late"]
    assert await due(30, everything, limit=2) == ["acw_end:s1", "sync_card:lease-over"]
    assert await due(60, ["sync_card"]) == ["sync_card:leased", "sync_card:lease-over"]
    assert await due(0, everything) == []
    assert await due(1000, []) == []

    async def next_due(kinds: list[str]) -> datetime | None:
        return await read(store, lambda uow: uow.timers.next_due_at(kinds))

    assert await next_due(everything) == at(1)
    assert await next_due(["sync_card"]) == at(10)  # the lease decides when it may run again
    assert await next_due(["ring_timeout"]) == at(5)
    assert await next_due(["stale_sweep"]) is None
    assert await next_due([]) is None


# -- messages, counters, tags ------------------------------------------------------------------

async def test_messages_are_numbered_per_task(store: Store) -> None:
    def message(task_id: str, text: str, sender: Sender = Sender.CUSTOMER,
                **more: Any) -> ChatMessage:
        return ChatMessage(task_id=task_id, sender=sender, text=text, at=at(1), **more)

    batch = [message("t1", "Hello"), message("t2", "Hi"), message("t1", "Anyone?")]

    async def append(uow: UnitOfWork, messages: list[ChatMessage]) -> None:
        for item in messages:
            await uow.messages.append(item)

    await write(store, lambda uow: append(uow, batch))
    more = [message("t1", "Thanks", sender=Sender.SYSTEM, kind=Kind.ACCEPTED,
                    data={"agent": "Agent 1"}),
            ChatMessage(task_id="t1", sender=Sender.AGENT, text="Hi Jane", at=at(2),
                        agent_id="a1")]
    await write(store, lambda uow: append(uow, more))
    assert [m.seq for m in [*batch, *more]] == [1, 1, 2, 3, 4]
    t1 = await read(store, lambda uow: uow.messages.after("t1", 0, 100))
    assert t1 == [batch[0], batch[2], *more]
    assert await read(store, lambda uow: uow.messages.after("t1", 1, 2)) == [batch[2], more[0]]
    assert await read(store, lambda uow: uow.messages.after("t1", 4, 10)) == []
    assert await read(store, lambda uow: uow.messages.after("t2", 0, 10)) == [batch[1]]
    assert await read(store, lambda uow: uow.messages.after("t9", 0, 10)) == []


async def test_when_a_sender_last_wrote_newest_first_own_lines_included(store: Store) -> None:
    lines = [ChatMessage(task_id="t1", sender=sender, text=f"line {n}", at=at(n))
             for n, sender in enumerate([Sender.CUSTOMER, Sender.AGENT, Sender.CUSTOMER,
                                         Sender.SYSTEM, Sender.CUSTOMER], start=1)]
    lines.append(ChatMessage(task_id="t2", sender=Sender.CUSTOMER, text="other", at=at(9)))

    async def append(uow: UnitOfWork) -> None:
        for line in lines:
            await uow.messages.append(line)

    await write(store, append)
    assert await read(store, lambda uow: uow.messages.sent_at("t1", Sender.CUSTOMER, 2)) == [
        at(5), at(3)]
    assert await read(store, lambda uow: uow.messages.sent_at("t1", Sender.CUSTOMER, 9)) == [
        at(5), at(3), at(1)]
    assert await read(store, lambda uow: uow.messages.sent_at("t1", Sender.AGENT, 9)) == [at(2)]
    assert await read(store, lambda uow: uow.messages.sent_at("t3", Sender.CUSTOMER, 9)) == []

    async def append_then_ask(uow: UnitOfWork) -> list[datetime]:
        await uow.messages.append(ChatMessage(task_id="t1", sender=Sender.CUSTOMER,
                                              text="unsaved", at=at(7)))
        return await uow.messages.sent_at("t1", Sender.CUSTOMER, 2)

    assert await write(store, append_then_ask) == [at(7), at(5)]


async def test_counters_count_per_name(store: Store) -> None:
    async def take(uow: UnitOfWork) -> list[int]:
        return [await uow.counters.next("visitor:sales"), await uow.counters.next("visitor:sales"),
                await uow.counters.next("visitor:support")]

    assert await write(store, take) == [1, 2, 1]
    assert await write(store, take) == [3, 4, 2]


async def test_tag_suggestions_prefer_prefix_then_use_then_recency(store: Store) -> None:
    async def record(tags: list[str], when: float, service: str = "sales") -> None:
        await write(store, lambda uow: uow.tags.record(service, tags, at(when)))

    await record(["Billing", "Refund"], 0)
    await record(["billing", "Rebill"], 10)
    await record(["Bill of lading"], 20)
    await record(["Rebill"], 30)
    await record(["Billing"], 5, service="support")

    async def suggest(text: str, limit: int = 10, service: str = "sales") -> list[str]:
        return await read(store, lambda uow: uow.tags.suggest(service, text, limit))

    assert await suggest("bill") == ["Billing", "Bill of lading", "Rebill"]
    assert await suggest("BILL", 2) == ["Billing", "Bill of lading"]
    assert await suggest("") == ["Rebill", "Billing", "Bill of lading", "Refund"]
    assert await suggest("re") == ["Rebill", "Refund"]
    assert await suggest("xyz") == []
    assert await suggest("bill", service="support") == ["Billing"]
    assert await suggest("bill", service="none") == []
