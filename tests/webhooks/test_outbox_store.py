"""The outbox port on every backend: per-task order, conditional writes, rows that survive."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from bot.domain.webhooks.model import Delivery, Trigger
from bot.services.ports import ConflictError, Store, UnitOfWork
from tests.contract.conftest import Backend

R = TypeVar("R")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def delivery(task_id: str, key: str, *, body: str = '{"name": "Zoë"}') -> Delivery:
    return Delivery(task_id=task_id, key=key, service_id="sales", template=0,
                    trigger=Trigger.ACCEPTED, method="POST",
                    url="https://crm.example/x?name=Zo%C3%AB",
                    headers={"Content-Type": "application/json"}, body=body, timeout=10.0,
                    signed=True, created_at=T0, session_id="s1")


async def write(store: Store, action: Callable[[UnitOfWork], Awaitable[R]]) -> R:
    async with store.unit_of_work() as uow:
        result = await action(uow)
        await uow.commit()
    return result


async def read(store: Store, task_id: str) -> list[Delivery]:
    async with store.unit_of_work() as uow:
        return await uow.outbox.pending(task_id, 100)


async def test_appends_keep_their_order_per_task_and_survive_a_reopen(
        backend: Backend) -> None:
    try:
        store = await backend.open()

        async def first(uow: UnitOfWork) -> None:
            await uow.outbox.append(delivery("t1", "a"))
            await uow.outbox.append(delivery("t2", "x"))
            await uow.outbox.append(delivery("t1", "b"))
            # Reads in the same unit of work see its appends.
            assert [d.key for d in await uow.outbox.pending("t1", 10)] == ["a", "b"]

        await write(store, first)
        await write(store, lambda uow: uow.outbox.append(delivery("t1", "c")))
        again = await backend.open()  # a second instance, or the app after a restart
        found = await read(again, "t1")
        assert [(d.key, d.seq, d.version) for d in found] == [("a", 1, 1), ("b", 2, 1),
                                                              ("c", 3, 1)]
        assert [d.key for d in await read(again, "t2")] == ["x"]
        assert (found[0].url, found[0].headers, found[0].body, found[0].created_at,
                found[0].trigger) == ("https://crm.example/x?name=Zo%C3%AB",
                                      {"Content-Type": "application/json"}, '{"name": "Zoë"}',
                                      T0, Trigger.ACCEPTED)
        async with again.unit_of_work() as uow:
            assert [d.key for d in await uow.outbox.pending("t1", 1)] == ["a"]
    finally:
        await backend.close()


async def test_save_and_delete_are_conditional(backend: Backend) -> None:
    try:
        store = await backend.open()
        await write(store, lambda uow: uow.outbox.append(delivery("t1", "a")))
        await write(store, lambda uow: uow.outbox.append(delivery("t1", "b")))
        [stale, _] = await read(store, "t1")

        async def retry_later(uow: UnitOfWork) -> None:
            [head, _] = await uow.outbox.pending("t1", 10)
            head.attempts += 1
            head.last_status = 503
            head.not_before = T0 + timedelta(seconds=10)
            await uow.outbox.save(head)

        await write(store, retry_later)
        [head, _] = await read(store, "t1")
        assert (head.key, head.attempts, head.last_status, head.version) == ("a", 1, 503, 2)
        assert head.not_before == T0 + timedelta(seconds=10)

        async def save_stale(uow: UnitOfWork) -> None:
            await uow.outbox.save(stale)

        async def delete_stale(uow: UnitOfWork) -> None:
            await uow.outbox.delete(stale)

        for action in (save_stale, delete_stale):
            with pytest.raises(ConflictError):
                await write(store, action)

        async def done(uow: UnitOfWork) -> None:
            [current, _] = await uow.outbox.pending("t1", 10)
            await uow.outbox.delete(current)
            assert [d.key for d in await uow.outbox.pending("t1", 10)] == ["b"]

        await write(store, done)
        assert [d.key for d in await read(store, "t1")] == ["b"]
        # Later appends still go behind what waits.
        await write(store, lambda uow: uow.outbox.append(delivery("t1", "c")))
        assert [d.key for d in await read(store, "t1")] == ["b", "c"]

        async def rolled_back(uow: UnitOfWork) -> None:
            await uow.outbox.append(delivery("t1", "never"))

        async with store.unit_of_work() as uow:
            await rolled_back(uow)  # no commit: nothing stays
        assert [d.key for d in await read(store, "t1")] == ["b", "c"]
    finally:
        await backend.close()


async def test_two_instances_appending_to_one_task_both_land_in_order(backend: Backend) -> None:
    try:
        one, two = await backend.open(), await backend.open()
        if backend.name == "cosmos":
            # Both take number 1; Cosmos flushes at commit, so the later commit conflicts and
            # the Engine would run its use case again. (SQLite has one writer at a time.)
            async with one.unit_of_work() as first, two.unit_of_work() as second:
                await first.outbox.append(delivery("t1", "one"))
                await second.outbox.append(delivery("t1", "two"))
                await first.commit()
                with pytest.raises(ConflictError):
                    await second.commit()
        else:
            await write(one, lambda uow: uow.outbox.append(delivery("t1", "one")))
        await write(two, lambda uow: uow.outbox.append(delivery("t1", "two")))
        assert [(d.key, d.seq) for d in await read(one, "t1")] == [("one", 1), ("two", 2)]
    finally:
        await backend.close()
