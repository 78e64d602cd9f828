"""Transactional batches: the stand-in's batch semantics, and commits that are all-or-nothing.

The first tests hold the batch preload of `tests/cosmos_server.py` to what Cosmos DB documents
for `execute_item_batch` (all or nothing, per-operation `ifMatch`, 409 on a create of an item
that exists, 424 for the operations that did not fail). The last ones look at a commit from a
second instance, in the middle of it: a proxy in front of the emulator lets that instance read
after every write response the first instance gets, before the first instance sees it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from azure.cosmos import PartitionKey
from azure.cosmos import exceptions as cosmos_errors
from azure.cosmos.aio import ContainerProxy, CosmosClient

from bot.services.ports import ConflictError
from bot.storage.cosmos import CosmosOptions, CosmosStore
from tests.contract.conftest import CosmosBackend
from tests.contract.test_storage_contract import add_all, make_agent, read
from tests.contract.throttle import ThrottlingProxy, writes_to
from tests.cosmos_server import CosmosServer

PK = "p1"


@pytest.fixture
async def container(cosmos_server: CosmosServer) -> AsyncIterator[ContainerProxy]:
    client = CosmosClient(cosmos_server.endpoint, cosmos_server.key)
    name = f"batch-{uuid.uuid4().hex[:8]}"
    try:
        database = await client.create_database(name)
        yield await database.create_container("items", partition_key=PartitionKey("/pk"))
        await client.delete_database(name)
    finally:
        await client.close()


def item(item_id: str, value: int = 0, pk: str = PK) -> dict[str, Any]:
    return {"id": item_id, "pk": pk, "value": value}


async def stored(container: ContainerProxy) -> dict[str, dict[str, Any]]:
    return {d["id"]: d async for d in container.query_items("SELECT * FROM c")}


async def test_a_batch_applies_every_operation_in_order(container: ContainerProxy) -> None:
    kept = await container.create_item(item("kept", 1))
    gone = await container.create_item(item("gone"))
    results = await container.execute_item_batch(batch_operations=[
        ("create", (item("new", 2),)),
        ("replace", ("new", item("new", 3))),  # sees the create before it
        ("replace", ("kept", item("kept", 4)), {"if_match_etag": kept["_etag"]}),
        ("delete", ("gone",), {"if_match_etag": gone["_etag"]}),
        ("upsert", (item("up", 5),)),
        ("read", ("kept",)),
    ], partition_key=PK)
    assert [r["statusCode"] for r in results] == [201, 200, 200, 204, 201, 200]
    assert results[2]["eTag"] == results[2]["resourceBody"]["_etag"] != kept["_etag"]
    assert results[5]["resourceBody"]["value"] == 4
    after = await stored(container)
    assert {k: v["value"] for k, v in after.items()} == {"new": 3, "kept": 4, "up": 5}


async def test_a_stale_if_match_fails_the_whole_batch(container: ContainerProxy) -> None:
    first = await container.create_item(item("first", 1))
    second = await container.create_item(item("second", 1))
    await container.replace_item("second", item("second", 2))  # someone else wrote since
    with pytest.raises(cosmos_errors.CosmosBatchOperationError) as failed:
        await container.execute_item_batch(batch_operations=[
            ("create", (item("new"),)),
            ("replace", ("first", item("first", 9)), {"if_match_etag": first["_etag"]}),
            ("replace", ("second", item("second", 9)), {"if_match_etag": second["_etag"]}),
            ("upsert", (item("up"),)),
        ], partition_key=PK)
    assert failed.value.status_code == 412 and failed.value.error_index == 2
    assert [r["statusCode"] for r in failed.value.operation_responses] == [424, 424, 412, 424]
    after = await stored(container)
    assert set(after) == {"first", "second"}  # nothing created
    # Put back exactly: the same content and the same ETag, so a writer holding it still wins.
    assert (after["first"]["value"], after["first"]["_etag"]) == (1, first["_etag"])
    assert after["second"]["value"] == 2


async def test_creating_an_item_that_exists_fails_the_batch_with_409(
        container: ContainerProxy) -> None:
    await container.create_item(item("taken", 1))
    with pytest.raises(cosmos_errors.CosmosBatchOperationError) as failed:
        await container.execute_item_batch(batch_operations=[
            ("upsert", (item("up"),)),
            ("create", (item("taken", 2),)),
            ("delete", ("up",)),
        ], partition_key=PK)
    assert failed.value.status_code == 409 and failed.value.error_index == 1
    assert [r["statusCode"] for r in failed.value.operation_responses] == [424, 409, 424]
    assert {k: v["value"] for k, v in (await stored(container)).items()} == {"taken": 1}


async def test_a_missing_item_fails_the_batch_with_404(container: ContainerProxy) -> None:
    with pytest.raises(cosmos_errors.CosmosBatchOperationError) as failed:
        await container.execute_item_batch(batch_operations=[
            ("create", (item("new"),)), ("delete", ("absent",))], partition_key=PK)
    assert [r["statusCode"] for r in failed.value.operation_responses] == [424, 404]
    assert await stored(container) == {}


async def test_a_batch_stays_in_one_partition_and_within_100_operations(
        container: ContainerProxy) -> None:
    with pytest.raises(cosmos_errors.CosmosBatchOperationError) as failed:
        await container.execute_item_batch(batch_operations=[
            ("create", (item("mine"),)), ("create", (item("theirs", pk="p2"),))],
            partition_key=PK)
    assert [r["statusCode"] for r in failed.value.operation_responses] == [424, 400]
    with pytest.raises(cosmos_errors.CosmosHttpResponseError) as too_many:
        await container.execute_item_batch(batch_operations=[
            ("create", (item(f"i{n}"),)) for n in range(101)], partition_key=PK)
    assert too_many.value.status_code == 400
    assert await stored(container) == {}


# -- a commit, seen from another instance while it is written ---------------------------------


class WatchingProxy(ThrottlingProxy):
    """Forwards to the emulator; after each matching write it awaits `watch` before answering."""

    def __init__(self, server: CosmosServer, when: Callable[[web.Request], bool],
                 watch: Callable[[], Awaitable[None]]) -> None:
        super().__init__(server)
        self.watching = when
        self.watch = watch

    async def _handle(self, request: web.Request) -> web.Response:
        reply = await super()._handle(request)
        if self.watching(request):
            await self.watch()
        return reply


async def test_a_commit_that_loses_its_race_shows_no_partial_write_to_another_instance(
        cosmos: CosmosBackend, cosmos_server: CosmosServer) -> None:
    """One unit of work saves two agents (one partition: the roster); the second save loses
    to another instance. Before, the first agent was written, visible, then undone."""
    two = await cosmos.open()
    await add_all(two, make_agent("a1"), make_agent("a2"))
    seen: list[str] = []

    async def look() -> None:
        agent = await read(two, lambda uow: uow.agents.get("a1"))
        assert agent is not None
        seen.append(agent.name)

    proxy = await WatchingProxy(cosmos_server, writes_to("agents"), look).start()
    client = CosmosClient(proxy.endpoint, cosmos_server.key, **CosmosOptions().client_kwargs())
    one = await CosmosStore(client, cosmos.database, owned=(client,)).open()
    try:
        async with one.unit_of_work() as uow:
            first, second = await uow.agents.get("a1"), await uow.agents.get("a2")
            assert first is not None and second is not None
            first.name, second.name = "Offered 1", "Offered 2"
            await uow.agents.save(first)
            await uow.agents.save(second)
            await _rename(two, "a2", "Theirs")  # the other instance writes a2 first
            with pytest.raises(ConflictError):
                await uow.commit()
        assert seen, "the proxy saw the commit's writes"
        assert set(seen) == {"A1"}, f"another instance saw a1 as {seen}"
        theirs = await read(two, lambda uow: uow.agents.get("a2"))
        assert theirs is not None and theirs.name == "Theirs"
    finally:
        await one.close()
        await proxy.stop()


async def _rename(store: CosmosStore, agent_id: str, name: str) -> None:
    async with store.unit_of_work() as uow:
        agent = await uow.agents.get(agent_id)
        assert agent is not None
        agent.name = name
        await uow.agents.save(agent)
        await uow.commit()
