"""The storage ports privacy needs, on every backend: forgetting chat lines, finding a customer."""

from __future__ import annotations

import json
from dataclasses import replace

from bot.bootstrap import build_engine
from bot.domain.customer import Customer
from bot.domain.message import ChatMessage, Kind, Sender
from bot.services.lifecycle import terminate
from bot.services.ports import CustomerQuery, Store, UnitOfWork
from bot.storage.cosmos import CosmosStore
from bot.storage.cosmos_base import CONTAINERS, query_all
from tests.contract.conftest import CosmosBackend
from tests.contract.test_storage_contract import (
    add_all,
    at,
    make_session,
    make_task,
    read,
    write,
)
from tests.cosmos_server import CosmosServer
from tests.fakes import FakeClock
from tests.scenario import add_agent, advance
from tests.unit import test_retention_scan as retention


async def test_forget_deletes_chat_lines_after_a_number_and_keeps_the_numbering(
        store: Store) -> None:
    rows = [ChatMessage(task_id="t1", sender=Sender.SYSTEM, text="", at=at(0), kind=Kind.QUEUED),
            ChatMessage(task_id="t1", sender=Sender.CUSTOMER, text="secret one", at=at(1)),
            ChatMessage(task_id="t1", sender=Sender.AGENT, text="agent words", at=at(2),
                        agent_id="a1"),
            ChatMessage(task_id="t1", sender=Sender.CUSTOMER, text="secret two", at=at(3)),
            ChatMessage(task_id="t1", sender=Sender.SYSTEM, text="", at=at(4), kind=Kind.ENDED),
            ChatMessage(task_id="t2", sender=Sender.CUSTOMER, text="other task", at=at(1))]

    async def append(uow: UnitOfWork) -> None:
        for row in rows:
            await uow.messages.append(row)

    await write(store, append)
    assert await read(store, lambda uow: uow.messages.last_seq("t1")) == 5
    assert await write(store, lambda uow: uow.messages.forget("t1", 2)) == 2
    left = await read(store, lambda uow: uow.messages.after("t1", 0, 100))
    assert [(m.seq, m.text) for m in left] == [(1, ""), (2, "secret one"), (5, "")]
    assert await write(store, lambda uow: uow.messages.forget("t1", 0)) == 1
    left = await read(store, lambda uow: uow.messages.after("t1", 0, 100))
    assert [m.kind for m in left] == [Kind.QUEUED, Kind.ENDED]
    assert await read(store, lambda uow: uow.messages.last_seq("t1")) == 5
    assert [m.text for m in await read(store, lambda uow: uow.messages.after("t2", 0, 9))] \
        == ["other task"]

    async def more(uow: UnitOfWork) -> int:
        row = ChatMessage(task_id="t1", sender=Sender.SYSTEM, text="", at=at(5), kind=Kind.ENDED)
        await uow.messages.append(row)
        return await uow.messages.last_seq("t1")

    assert await write(store, more) == 6


async def test_about_finds_tasks_and_sessions_by_email_phone_or_name(store: Store) -> None:
    zed = Customer(name="Zed Example", email="Zed@Example.org", phone="+41 (79) 555-12.34")
    task = replace(make_task("t1"), customer=zed, customer_label=zed.name)
    other = make_task("t2")  # Jane Doe, j@x.org
    gone = replace(make_session("s1", task_id="t1"), customer=zed)
    mine = replace(make_session("s2", task_id="t9"), customer=replace(zed, name="Z."))
    jane = replace(make_session("s3", task_id="t2"), customer=other.customer)
    stripped = replace(make_session("s4", task_id="t3"), customer=None, customer_label=None)
    await add_all(store, task, other, gone, mine, jane, stripped)

    async def found(who: CustomerQuery) -> tuple[list[str], list[str]]:
        async def run(uow: UnitOfWork) -> tuple[list[str], list[str]]:
            return (sorted(t.id for t in await uow.tasks.about(who, 100)),
                    sorted(s.id for s in await uow.sessions.about(who, 100)))
        return await read(store, run)

    assert await found(CustomerQuery(email="zed@example.ORG")) == (["t1"], ["s1", "s2"])
    assert await found(CustomerQuery(phone="+4179555 1234")) == (["t1"], ["s1", "s2"])
    assert await found(CustomerQuery(name="zed example")) == (["t1"], ["s1"])
    assert await found(CustomerQuery(name="Jane Doe", email="nobody@x.org")) == (["t2"], ["s3"])
    assert await found(CustomerQuery()) == ([], [])


async def test_a_concluded_chat_without_opt_in_leaves_nothing_in_any_container(
        cosmos_server: CosmosServer) -> None:
    backend = CosmosBackend(cosmos_server)
    store = await backend.open()
    clock = FakeClock()
    try:
        engine = build_engine(store, clock, retention.services())
        agent_id = await add_agent(engine, 1)
        session_id = await retention.chat(engine, "drop", agent_id)
        assert await _found_in_containers(store) == set(retention.SECRETS)
        await engine.run(terminate, session_id)
        assert await _found_in_containers(store) == set()

        kept = await retention.chat(engine, "keep", agent_id)
        await engine.run(terminate, kept)
        assert await _found_in_containers(store) == set(retention.SECRETS)
        await advance(engine, clock, 30 * 86400)
        assert await _found_in_containers(store) == set()
    finally:
        await backend.close()


async def _found_in_containers(store: CosmosStore) -> set[str]:
    text = []
    for name in CONTAINERS:  # every container, also one added later
        docs = await query_all(store.container(name), "SELECT * FROM c", [])
        text.append(json.dumps(docs, ensure_ascii=False))
    joined = "\n".join(text).lower()
    return {s for s in retention.SECRETS if s.lower() in joined}
