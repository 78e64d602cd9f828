"""How the SQLite store gets statements to the database (bot/storage/sqlite.py and
sqlite_driver.py).

Writes are held back and travel with the next read or the COMMIT (one trip, "hop", for many
statements); read-only units of work run on a second, query-only connection without the write
lock. What the use cases see must not change: their own writes, conflicts, rollbacks."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from bot.domain.agent import Agent
from bot.domain.customer import Customer
from bot.domain.errors import Refused
from bot.domain.events import Event
from bot.domain.message import ChatMessage, Sender
from bot.domain.service import Modality
from bot.domain.task import Task, TaskState
from bot.domain.timers import Timer
from bot.services.ports import ConflictError, StoreUnavailable
from bot.storage.sqlite import SqliteStore

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def make_task(task_id: str, name: str = "Jane Doe") -> Task:
    return Task(id=task_id, service_id="sales", modality=Modality.IM, created_at=T0,
                enqueued_at=T0, customer=Customer(name=name), customer_label=name,
                call_flow=["sales"])


async def add_task(store: SqliteStore, task_id: str) -> None:
    async with store.unit_of_work() as uow:
        await uow.tasks.add(make_task(task_id))
        await uow.commit()


async def outdated_task(store: SqliteStore, task_id: str) -> Task:
    """A task as read before someone else saved it again: saving it must conflict."""
    await add_task(store, task_id)
    async with store.unit_of_work() as uow:
        stale = await uow.tasks.get(task_id)
    assert stale is not None
    async with store.unit_of_work() as uow:
        fresh = await uow.tasks.get(task_id)
        assert fresh is not None
        await uow.tasks.save(fresh)
        await uow.commit()
    return stale


async def test_the_aiosqlite_internals_the_store_relies_on_are_there(db_path: Path) -> None:
    """A hop queues a whole batch the way aiosqlite queues each of its own calls: a (future,
    function) pair on `Connection._tx`, run with `Connection._conn` on the connection's thread,
    the future (if any) resolved on the loop; `_running` says whether that thread still runs."""
    conn = await aiosqlite.connect(db_path)
    try:
        assert conn._running is True
        assert isinstance(conn._conn, sqlite3.Connection)
        future = asyncio.get_running_loop().create_future()
        conn._tx.put_nowait((future, lambda: conn._conn.execute("SELECT 41 + 1").fetchall()))
        assert [tuple(r) for r in await future] == [(42,)]
        # Without a future the call runs all the same, in order, and nothing is reported
        # back (the store's hops signal their own end), not even an error.
        ran: list[int] = []
        conn._tx.put_nowait((None, lambda: ran.append(1)))
        conn._tx.put_nowait((None, lambda: 1 / 0))
        future = asyncio.get_running_loop().create_future()
        conn._tx.put_nowait((future, lambda: ran.append(2)))
        await future
        assert ran == [1, 2]
    finally:
        await conn.close()
    assert conn._running is False


async def test_writes_travel_with_the_next_read_and_the_commit(store: SqliteStore) -> None:
    async with store.unit_of_work() as uow:
        await uow.tasks.add(make_task("t1"))
        await uow.timers.arm(Timer("ring_timeout", "s1", T0))
        await uow.events.append(Event("task.created", T0, task_id="t1"))
        assert uow.hops == 0
        # The read sees the writes held back before it: they ran first, in the same hop.
        assert [t.id for t in await uow.tasks.queued("sales", 10)] == ["t1"]
        assert uow.hops == 1
        task = await uow.tasks.get("t1")
        assert task is not None
        task.state = TaskState.RINGING
        await uow.tasks.save(task)
        await uow.timers.cancel("ring_timeout:s1")
        await uow.commit()
        assert (uow.hops, uow.statements) == (2, 8)  # BEGIN, 3 writes, SELECT; 2 writes, COMMIT
    async with store.read_only() as uow:
        found = await uow.tasks.get("t1")
        assert found is not None and (found.state, found.version) == (TaskState.RINGING, 2)
        assert await uow.timers.get("ring_timeout:s1") is None


async def test_sequence_numbers_are_set_once_the_writes_ran(store: SqliteStore) -> None:
    await add_task(store, "t1")
    message = ChatMessage(task_id="t1", sender=Sender.CUSTOMER, text="Hi", at=T0)
    second = ChatMessage(task_id="t1", sender=Sender.CUSTOMER, text="Still there?", at=T0)
    event = Event("message", T0, task_id="t1")
    async with store.unit_of_work() as uow:
        await uow.messages.append(message)
        await uow.messages.append(second)
        await uow.events.append(event)
        await uow.commit()
    assert (message.seq, second.seq) == (1, 2)
    assert event.seq >= 1


@pytest.fixture
async def two_stores(db_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """Two stores on one database file, as two app instances."""
    one = await SqliteStore(db_path).open()
    two = await SqliteStore(db_path).open()
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


async def made_stale(one: SqliteStore, two: SqliteStore, state: TaskState | None = None) -> Task:
    """Task t1 added and read on `one`, then saved again on `two` (in `state`, if given): the
    copy `one` read is one version behind."""
    await add_task(one, "t1")
    async with one.unit_of_work() as uow:
        stale = await uow.tasks.get("t1")
    assert stale is not None
    async with two.unit_of_work() as uow:
        theirs = await uow.tasks.get("t1")
        assert theirs is not None
        if state is not None:
            theirs.state = state
        await uow.tasks.save(theirs)
        await uow.commit()
    return stale


async def test_a_stale_held_back_write_conflicts_and_nothing_sticks(
        two_stores: tuple[SqliteStore, SqliteStore]) -> None:
    one, two = two_stores
    stale = await made_stale(one, two, TaskState.CANCELLED)
    assert stale.version == 1

    with pytest.raises(ConflictError):
        async with one.unit_of_work() as uow:
            await uow.tasks.add(make_task("t2"))
            stale.state = TaskState.RINGING
            await uow.tasks.save(stale)  # held back: no error yet
            assert stale.version == 2
            await uow.timers.arm(Timer("ring_timeout", "s1", T0))
            await uow.commit()
    assert stale.version == 1, "a version bumped in a failed unit of work goes back"
    async with one.read_only() as uow:
        assert await uow.tasks.get("t2") is None
        assert await uow.timers.get("ring_timeout:s1") is None
        current = await uow.tasks.get("t1")
        assert current is not None and current.state is TaskState.CANCELLED


async def test_a_stale_write_surfaces_as_a_conflict_at_the_next_read(store: SqliteStore) -> None:
    stale = await outdated_task(store, "t1")
    async with store.unit_of_work() as uow:
        await uow.tasks.save(stale)
        with pytest.raises(ConflictError):
            await uow.tasks.queued("sales", 10)


async def test_an_error_with_writes_held_back_reports_their_conflict(store: SqliteStore) -> None:
    """Had the write run at once, its conflict would have come before the error: the engine
    must see the conflict (and retry on fresh state), not the error decided on stale data."""
    stale = await outdated_task(store, "t1")

    with pytest.raises(ConflictError) as raised:
        async with store.unit_of_work() as uow:
            await uow.tasks.save(stale)
            raise Refused("decided on stale data")
    assert isinstance(raised.value.__cause__, Refused)

    with pytest.raises(Refused):  # no conflict held back: the error is the error
        async with store.unit_of_work() as uow:
            current = await uow.tasks.get("t1")
            assert current is not None
            await uow.tasks.save(current)
            raise Refused("a plain refusal")
    async with store.read_only() as uow:
        after = await uow.tasks.get("t1")
        assert after is not None and after.version == 2


async def test_an_existing_id_conflicts_at_the_commit(store: SqliteStore) -> None:
    await add_task(store, "t1")
    with pytest.raises(ConflictError):
        async with store.unit_of_work() as uow:
            await uow.tasks.add(make_task("t1"))
            await uow.commit()


async def test_a_unit_of_work_that_changed_nothing_ends_without_a_hop(
        store: SqliteStore) -> None:
    await add_task(store, "t1")
    for _ in range(3):
        async with store.unit_of_work() as uow:
            assert await uow.tasks.get("t1") is not None
            await uow.commit()
        assert uow.hops == 1
    async with store.unit_of_work() as uow:  # and the next one starts a fresh transaction
        task = await uow.tasks.get("t1")
        assert task is not None
        await uow.tasks.save(task)
        await uow.commit()
    await store.ping()
    async with store.read_only() as uow:
        again = await uow.tasks.get("t1")
        assert again is not None and again.version == 2


async def test_read_only_sees_committed_data_and_never_waits_for_the_writer(
        store: SqliteStore) -> None:
    await add_task(store, "t1")
    async with store.unit_of_work() as writer:
        task = await writer.tasks.get("t1")
        assert task is not None
        task.state = TaskState.RINGING
        await writer.tasks.save(task)
        await writer.tasks.queued("sales", 1)  # the UPDATE ran: the writer holds the lock
        async with asyncio.timeout(2):
            async with store.read_only() as reader:
                seen = await reader.tasks.get("t1")
        assert seen is not None and seen.state is TaskState.QUEUED  # not the uncommitted one
        await writer.commit()
    async with store.read_only() as reader:
        seen = await reader.tasks.get("t1")
        assert seen is not None and seen.state is TaskState.RINGING


async def test_a_writer_never_waits_for_a_read_only_unit_of_work(store: SqliteStore) -> None:
    await add_task(store, "t1")
    async with store.read_only() as reader:
        assert await reader.tasks.get("t1") is not None
        async with asyncio.timeout(2):
            async with store.unit_of_work() as writer:
                await writer.tasks.add(make_task("t2"))
                await writer.commit()
        assert [t.id for t in await reader.tasks.queued("sales", 10)] == ["t1", "t2"]


async def test_read_only_refuses_to_write(store: SqliteStore) -> None:
    async with store.read_only() as uow:
        with pytest.raises(TypeError):
            await uow.tasks.add(make_task("t1"))
        with pytest.raises(StoreUnavailable):  # a write sent as a query: the file says no
            await uow.counters.next("visitor")


async def test_a_lock_held_elsewhere_makes_writes_unavailable_not_reads(db_path: Path) -> None:
    store = await SqliteStore(db_path, busy_timeout_ms=300).open()
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        await add_task(store, "t1")
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable):
            async with store.unit_of_work() as uow:
                await uow.tasks.add(make_task("t2"))
                await uow.commit()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        async with store.read_only() as uow:
            assert await uow.tasks.get("t1") is not None
        holder.execute("ROLLBACK")
        await store.ping()
        await add_task(store, "t2")
    finally:
        holder.close()
        await store.close()


async def test_the_connection_thread_logs_no_parameters(db_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """aiosqlite logs each call it runs at DEBUG; bot.logs caps that logger at INFO, and the
    batches a hop carries do not show their parameters even below that cap. (A lock held
    elsewhere for a moment sends the hop to the connection's thread, where aiosqlite runs it.)"""
    secret = "Zelda Quixote"
    store = await SqliteStore(db_path).open()
    holder = sqlite3.connect(db_path, isolation_level=None)
    logging.getLogger("aiosqlite").setLevel(logging.DEBUG)
    try:
        holder.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.05, holder.execute, "ROLLBACK")
        with caplog.at_level(logging.DEBUG, logger="aiosqlite"):
            async with store.unit_of_work() as uow:
                await uow.tasks.add(make_task("t1", name=secret))
                await uow.tasks.queued("sales", 10)
                await uow.commit()
    finally:
        logging.getLogger("aiosqlite").setLevel(logging.NOTSET)
        holder.close()
        await store.close()
    assert caplog.records, "aiosqlite logged nothing: the check checks nothing"
    assert not [r for r in caplog.records if secret in r.getMessage()]


async def test_agents_still_load_through_the_faster_codec(store: SqliteStore) -> None:
    agent = Agent(id="a1", name="Alex", registered=True, services=["sales"], idle_since=T0,
                  rona_until=T0 + timedelta(minutes=1), conversation={"x": [1, {"y": None}]})
    async with store.unit_of_work() as uow:
        await uow.agents.add(agent)
        await uow.commit()
    async with store.read_only() as uow:
        loaded = await uow.agents.get("a1")
    assert loaded == agent


async def test_a_session_comes_with_its_task_and_agent_in_one_hop(store: SqliteStore) -> None:
    from bot.domain.session import Phase, Session

    agent = Agent(id="a1", name="Alex", registered=True, services=["sales"])
    session = Session(id="s1", task_id="t1", agent_id="a1", service_id="sales",
                      modality=Modality.IM, offered_at=T0, queued_at=T0,
                      ring_until=T0 + timedelta(seconds=30), service_name="Sales",
                      phase=Phase.CONNECTED, chat_id="chat-1", card_id="card-1")
    async with store.unit_of_work() as uow:
        await uow.agents.add(agent)
        await uow.tasks.add(make_task("t1"))
        await uow.sessions.add(session)
        await uow.commit()
    for find in ("get", "by_chat", "by_card"):
        async with store.read_only() as uow:
            key = {"get": "s1", "by_chat": "chat-1", "by_card": "card-1"}[find]
            found = await getattr(uow.sessions, find)(key)
            assert found is not None and found.id == "s1"
            task, who = await uow.tasks.get("t1"), await uow.agents.get("a1")
            assert task is not None and task.id == "t1" and who == agent
            assert uow.hops == 1, find
    async with store.unit_of_work() as uow:  # what the unit of work holds wins
        task = await uow.tasks.get("t1")
        assert task is not None
        task.state = TaskState.RINGING
        await uow.tasks.save(task)
        assert await uow.sessions.get("s1") is not None
        assert await uow.tasks.get("t1") is task
        assert await uow.sessions.get("missing") is None
        assert await uow.agents.get("a1") == agent
        await uow.commit()
    async with store.read_only() as uow:
        again = await uow.tasks.get("t1")
        assert again is not None and (again.state, again.version) == (TaskState.RINGING, 2)


async def test_the_lock_goes_at_the_commit_and_a_failed_commit_leaves_nothing_behind(
        two_stores: tuple[SqliteStore, SqliteStore]) -> None:
    """The next unit of work gets the lock once the COMMIT is queued; if that COMMIT's batch
    fails (here: a stale version, after an INSERT that went through), the next one's BEGIN
    first rolls back what is left, so it never sees the failed writes."""
    one, two = two_stores
    stale = await made_stale(one, two)

    async def failing() -> None:
        async with one.unit_of_work() as uow:
            await uow.tasks.add(make_task("t2"))
            await uow.tasks.save(stale)
            await uow.commit()

    async def following() -> Task | None:
        async with one.unit_of_work() as uow:
            return await uow.tasks.get("t2")

    results = await asyncio.gather(failing(), following(), return_exceptions=True)
    assert isinstance(results[0], ConflictError)
    assert results[1] is None
    async with one.unit_of_work() as uow:
        await uow.tasks.add(make_task("t3"))
        await uow.commit()
    async with two.read_only() as uow:
        assert await uow.tasks.get("t2") is None
        assert await uow.tasks.get("t3") is not None


async def test_hops_run_on_the_event_loop_thread_while_the_connection_threads_are_idle(
        store: SqliteStore) -> None:
    for read_only in (False, True):
        store.lane(read_only).conn._conn.create_function("thread", 0, threading.get_ident)
    async with store.unit_of_work() as uow:
        await uow.tasks.add(make_task("t1"))
        [(writer_thread,)] = await uow.fetch("SELECT thread()")
        await uow.commit()
    async with store.read_only() as uow:
        [(reader_thread,)] = await uow.fetch("SELECT thread()")
        assert await uow.tasks.get("t1") is not None
    assert writer_thread == reader_thread == threading.get_ident()


async def test_a_lock_held_elsewhere_is_waited_for_on_the_connection_thread(
        db_path: Path) -> None:
    """The write that meets the lock goes on on the connection's thread; the event loop keeps
    turning meanwhile, and the write lands once the lock is let go."""
    store = await SqliteStore(db_path, busy_timeout_ms=3000).open()
    holder = sqlite3.connect(db_path, isolation_level=None)
    turns = 0

    async def turning() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0.005)

    ticker = asyncio.create_task(turning())
    try:
        holder.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.2, holder.execute, "ROLLBACK")
        started = time.monotonic()
        await add_task(store, "t1")
        waited = time.monotonic() - started
        assert 0.2 <= waited < 2.0
        assert turns >= 10, "the loop stood still while the write waited"
        async with store.read_only() as uow:
            assert await uow.tasks.get("t1") is not None
    finally:
        ticker.cancel()
        holder.close()
        await store.close()


async def test_what_is_sent_while_the_connection_thread_is_busy_runs_after_it(
        store: SqliteStore) -> None:
    lane = store.lane(False)
    ran: list[tuple[str, int]] = []
    gate = threading.Event()

    def slow(_db: sqlite3.Connection) -> None:
        gate.wait(timeout=5)
        ran.append(("slow", threading.get_ident()))

    lane.put(None, slow)
    lane.run(lambda _db: ran.append(("next", threading.get_ident())))
    assert ran == []  # queued behind `slow`, not run here
    gate.set()
    await lane.call(lambda _db: None)
    assert [name for name, _ in ran] == ["slow", "next"]
    assert {thread for _, thread in ran} != {threading.get_ident()}
    lane.run(lambda _db: ran.append(("idle", threading.get_ident())))
    assert ran[-1] == ("idle", threading.get_ident())  # the thread is idle again: run here


async def test_a_file_without_the_shapeless_indexes_gets_them_and_keeps_its_schema(
        db_path: Path) -> None:
    store = await SqliteStore(db_path).open()
    await store.close()
    with sqlite3.connect(db_path) as db:  # as a build that did not know the index left it
        db.execute("DROP INDEX tags_top")
        version = db.execute("PRAGMA user_version").fetchone()[0]
    store = await SqliteStore(db_path).open()
    await store.close()
    with sqlite3.connect(db_path) as db:
        indexes = {row[1] for row in db.execute("PRAGMA index_list(tags)")}
        assert "tags_top" in indexes
        assert db.execute("PRAGMA user_version").fetchone()[0] == version
        # Suggestions with nothing typed read the most used tags off it, with no sort.
        plan = db.execute("EXPLAIN QUERY PLAN SELECT tag FROM tags WHERE service_id = ?"
                          " ORDER BY uses DESC, last_used DESC LIMIT ?", ("s", 5)).fetchall()
    assert any("tags_top" in str(step[-1]) for step in plan)
    assert not any("TEMP B-TREE" in str(step[-1]) for step in plan)
