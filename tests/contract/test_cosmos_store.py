"""What only the Cosmos DB store has: opening, partitioning, TTL, event gaps, index upkeep."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.cosmos.aio import ContainerProxy, CosmosClient

from bot.bootstrap import build_engine
from bot.config import Settings
from bot.domain.customer import Customer
from bot.domain.errors import Stale
from bot.domain.events import Event
from bot.domain.message import ChatMessage, Sender
from bot.domain.service import Modality
from bot.domain.session import Phase
from bot.domain.task import TaskResult, TaskState
from bot.domain.timers import Timer
from bot.services.context import Ctx
from bot.services.dispatch import create_task
from bot.services.lifecycle import terminate
from bot.services.offers import accept
from bot.services.ports import ConflictError, StoreUnavailable
from bot.storage.cosmos import (
    CONTAINERS,
    INDEXING_POLICY,
    CosmosOptions,
    CosmosStore,
    open_cosmos,
)
from bot.storage.cosmos_indexes import queue_pk
from bot.storage.cosmos_records import bump
from bot.storage.cosmos_repos import CUSTOMER_DATA_TTL, EVENT_SEQ
from tests.builders import catalog
from tests.contract.conftest import CosmosBackend
from tests.contract.test_storage_contract import (
    add_all,
    at,
    make_agent,
    make_session,
    make_task,
    read,
    write,
)
from tests.contract.throttle import ThrottlingProxy, writes_to
from tests.cosmos_server import CosmosServer
from tests.fakes import FakeClock
from tests.scenario import add_agent, advance, ringing


async def items(store: CosmosStore, container: str) -> list[dict[str, Any]]:
    proxy: ContainerProxy = store.container(container)
    return [doc async for doc in proxy.query_items("SELECT * FROM c")]


def settings(server: CosmosServer, database: str, key: str | None = None) -> Settings:
    return Settings(store="cosmos", cosmos_endpoint=server.endpoint,
                    cosmos_key=server.key if key is None else key, cosmos_database=database)


async def test_open_cosmos_creates_the_database_and_containers(
        cosmos_server: CosmosServer) -> None:
    name = f"open-{uuid.uuid4().hex[:8]}"
    store = await open_cosmos(settings(cosmos_server, name))
    try:
        await store.ping()
        for container in CONTAINERS:
            properties = await store.container(container).read()
            assert properties["partitionKey"]["paths"] == ["/pk"]
            assert properties["defaultTtl"] == -1
            assert properties["indexingPolicy"] == INDEXING_POLICY
        again = await open_cosmos(settings(cosmos_server, name))  # existing: left as it is
        await again.close()
    finally:
        await store.client.delete_database(name)
        await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_open_cosmos_reports_an_unreachable_account(cosmos_server: CosmosServer) -> None:
    unreachable = Settings(store="cosmos", cosmos_endpoint="https://127.0.0.1:9/",
                           cosmos_key=cosmos_server.key, cosmos_database="x")
    with pytest.raises(StoreUnavailable):
        await open_cosmos(unreachable, options=CosmosOptions(retry_connect=0, retry_total=0))
    with pytest.raises(StoreUnavailable):
        await open_cosmos(settings(cosmos_server, "x", key="not base64!"))


async def test_without_a_key_a_managed_identity_is_asked(
        cosmos_server: CosmosServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """No COSMOS_KEY: DefaultAzureCredential is used; here no identity exists, so it says so."""
    pytest.importorskip("azure.identity")
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")  # fail fast
    with pytest.raises(StoreUnavailable, match="ClientAuthenticationError"):
        await open_cosmos(settings(cosmos_server, "x", key=""),
                          options=CosmosOptions(retry_total=0))


async def test_documents_are_partitioned_as_designed(cosmos: CosmosBackend) -> None:
    store = await cosmos.open()
    session = make_session("s1", phase=Phase.CONNECTED, chat_id="19:chat@thread.v2")
    await add_all(store, make_agent("a1"), make_agent("a2"), make_task("t1"), session)

    async def more(uow: Any) -> None:
        await uow.timers.arm(Timer("ring_timeout", "s1", at(30)))
        await uow.events.append(Event("task.created", at(0), task_id="t1"))
        await uow.events.append(Event("agent.registered", at(0), agent_id="a1"))
        await uow.messages.append(ChatMessage("t1", Sender.CUSTOMER, "Hi", at(1)))
        await uow.counters.next("visitor:sales")
        await uow.tags.record("sales", ["VIP"], at(2))

    await write(store, more)
    pks = {name: sorted((d["pk"], d["id"]) for d in await items(store, name))
           for name in CONTAINERS}
    assert pks["agents"] == [("agents", "a1"), ("agents", "a2")]
    assert pks["tasks"] == [("t1", "t1")]
    assert pks["sessions"] == [("s1", "s1")]
    assert pks["timers"] == [("timers", "ring_timeout:s1")]
    assert pks["events"] == [("agent|a1", "2"), ("t1", "1")]
    assert pks["messages"] == [("t1", "1")]
    assert pks["meta"] == sorted([
        ("chat|19:chat@thread.v2", "s1"), ("counter|visitor:sales", "visitor:sales"),
        ("queue|sales", "t1"), ("seq|events", "events"), ("tags|sales", "vip")])


async def test_ttl_is_written_where_the_policy_asks(cosmos: CosmosBackend) -> None:
    def ttl(container: str, obj: object) -> int | None:
        return 30 * 86400 if container == "sessions" else None

    store = await cosmos.open(CosmosOptions(ttl=ttl))
    await add_all(store, make_task("t1"), make_session("s1"))
    [session_doc] = await items(store, "sessions")
    [task_doc] = await items(store, "tasks")
    assert session_doc["ttl"] == 30 * 86400
    assert "ttl" not in task_doc


async def test_customer_data_carries_a_ttl_until_its_context_is_gone(
        cosmos_server: CosmosServer, clock: FakeClock) -> None:
    """open_cosmos's default policy, through the use cases: chat lines always expire; task and
    session documents while they hold customer context (the emulator never expires anything:
    what is checked is the `ttl` written)."""
    name = f"ttl-{uuid.uuid4().hex[:8]}"
    store = await open_cosmos(settings(cosmos_server, name))
    try:
        engine = build_engine(store, clock, catalog(
            {"id": "keep", "context": {"store_data": True}, "acw": {"duration": "0s"}},
            {"id": "drop", "acw": {"duration": "0s"}}))
        await add_agent(engine, 1)
        kept = await engine.run(create_task, "keep", Modality.IM,
                                customer=Customer(name="Ann Example"))
        [offer] = await ringing(engine, kept.id)
        await engine.run(accept, offer.id, offer.agent_id)
        await engine.run(_say, kept.id)
        assert _ttls(await items(store, "tasks")) == {kept.id: CUSTOMER_DATA_TTL}
        assert _ttls(await items(store, "sessions")) == {offer.id: CUSTOMER_DATA_TTL}
        assert await _message_ttls(store) == [CUSTOMER_DATA_TTL] * 3  # accept's lines too
        assert list(_ttls(await items(store, "agents")).values()) == [None]
        await engine.run(terminate, offer.id)

        dropped = await engine.run(create_task, "drop", Modality.IM,
                                   customer=Customer(name="Bob Example"))
        [other] = await ringing(engine, dropped.id)
        await engine.run(accept, other.id, other.agent_id)
        await engine.run(terminate, other.id)
        # Concluded: the tasks hold no context any more; the opted-in session keeps its own.
        assert _ttls(await items(store, "tasks")) == {kept.id: None, dropped.id: None}
        assert _ttls(await items(store, "sessions")) == {offer.id: CUSTOMER_DATA_TTL,
                                                         other.id: None}
        await advance(engine, clock, 30 * 86400)  # the purge timer
        assert _ttls(await items(store, "sessions")) == {offer.id: None, other.id: None}
        lines = await _message_ttls(store)
        assert len(lines) > 3 and set(lines) == {CUSTOMER_DATA_TTL}
        assert all("ttl" not in e for e in await items(store, "events"))
    finally:
        await store.client.delete_database(name)
        await store.close()


async def _say(ctx: Ctx, task_id: str) -> None:
    await ctx.uow.messages.append(ChatMessage(task_id, Sender.CUSTOMER, "Hi", ctx.now))


def _ttls(docs: list[dict[str, Any]]) -> dict[str, int | None]:
    return {str(d["data"]["id"]): d.get("ttl") for d in docs}


async def _message_ttls(store: CosmosStore) -> list[int | None]:
    return [d.get("ttl") for d in await items(store, "messages")]


async def test_events_after_waits_at_a_fresh_gap_and_steps_over_an_old_one(
        cosmos: CosmosBackend) -> None:
    store = await cosmos.open()
    await write(store, lambda uow: uow.events.append(Event("one", at(0), task_id="t1")))
    async with store.unit_of_work() as uow:  # a writer that took number 2 and died
        await bump(uow, *EVENT_SEQ, 1)
    await write(store, lambda uow: uow.events.append(Event("three", at(1), task_id="t2")))
    found = await read(store, lambda uow: uow.events.after(0, 10))
    assert [e.seq for e in found] == [1]  # 2 may still be on its way
    patient = await cosmos.open(CosmosOptions(event_gap_grace=-1))
    found = await read(patient, lambda uow: uow.events.after(0, 10))
    assert [e.seq for e in found] == [1, 3]


async def test_stray_queue_entries_are_skipped_and_tidied(cosmos: CosmosBackend) -> None:
    store = await cosmos.open()
    finished = make_task("gone", enqueued=0)
    finished.finish(TaskState.CANCELLED, TaskResult.CANCELLED, at(5))
    await add_all(store, make_task("t1", enqueued=1), finished)
    meta = store.container("meta")
    for task_id, enqueued in (("gone", 0), ("never-written", -1)):  # lost races left these
        await meta.create_item({"id": task_id, "pk": queue_pk("sales"), "kind": "queue",
                                "task_id": task_id, "v": 1, "priority": 0, "enq": enqueued})
    queued = await read(store, lambda uow: uow.tasks.queued("sales", 10))
    assert [t.id for t in queued] == ["t1"]
    left = sorted(d["id"] for d in await items(store, "meta") if d["pk"] == queue_pk("sales"))
    assert left == ["never-written", "t1"]  # a task that never appeared gets a grace period


async def test_a_stale_live_hint_does_not_hide_the_latest_session(
        cosmos: CosmosBackend) -> None:
    store = await cosmos.open()
    await add_all(store, make_session("s1", offered=0, phase=Phase.CONNECTED, chat_id="c"),
                  make_session("s2", offered=10, phase=Phase.CONNECTED, chat_id="c"))

    async def end(uow: Any) -> None:
        for session_id in ("s1", "s2"):
            session = await uow.sessions.get(session_id)
            session.phase = Phase.ENDED
            await uow.sessions.save(session)

    await write(store, end)
    meta = store.container("meta")
    entry = await meta.read_item("s1", partition_key="chat|c")
    await meta.upsert_item({**entry, "live": True})  # an after-step that never ran
    found = await read(store, lambda uow: uow.sessions.by_chat("c"))
    assert found is not None and found.id == "s2"


async def test_units_of_work_guarding_one_key_conflict(cosmos: CosmosBackend) -> None:
    one, two = await cosmos.open(), await cosmos.open()
    async with one.unit_of_work() as first, two.unit_of_work() as second:
        await first.guard("dispatch|sales")
        await second.guard("dispatch|sales")
        await second.guard("dispatch|sales")  # once per unit of work is enough
        await first.commit()
        with pytest.raises(ConflictError):
            await second.commit()
    async with two.unit_of_work() as again:  # on fresh reads it goes through
        await again.guard("dispatch|sales")
        await again.commit()
    async with one.unit_of_work() as other, two.unit_of_work() as elsewhere:
        await other.guard("dispatch|sales")
        await elsewhere.guard("dispatch|support")  # another key: no conflict
        await other.commit()
        await elsewhere.commit()


async def test_a_refusal_on_reads_that_changed_meanwhile_is_a_conflict(
        cosmos: CosmosBackend) -> None:
    one, two = await cosmos.open(), await cosmos.open()
    await add_all(one, make_task("t1"))

    async def bump_priority(uow: Any) -> None:
        task = await uow.tasks.get("t1")
        task.priority += 1
        await uow.tasks.save(task)

    with pytest.raises(ConflictError) as raised:
        async with one.unit_of_work() as uow:
            assert await uow.tasks.get("t1") is not None
            await write(two, bump_priority)  # another instance commits after this read
            raise Stale("decided on a mix of old and new reads")
    assert isinstance(raised.value.__cause__, Stale)
    with pytest.raises(Stale):  # nothing it read changed: the refusal stands
        async with one.unit_of_work() as uow:
            assert await uow.tasks.get("t1") is not None
            raise Stale("a real refusal")


async def test_a_failed_commit_leaves_no_item_it_created_and_wrote_again(
        cosmos: CosmosBackend) -> None:
    one, two = await cosmos.open(), await cosmos.open()
    await add_all(one, make_task("t1"))
    async with one.unit_of_work() as uow:
        task = await uow.tasks.get("t1")
        assert task is not None
        await uow.timers.arm(Timer("ring_timeout", "s1", at(10)))
        await uow.timers.arm(Timer("ring_timeout", "s1", at(20)))  # the same item, again
        await uow.timers.arm(Timer("acw_end", "s1", at(10)))
        await uow.timers.cancel("acw_end:s1")  # created and deleted in one flush
        task.priority = 3
        await uow.tasks.save(task)
        await write(two, _touch_t1)  # another instance changes the task first
        with pytest.raises(ConflictError):
            await uow.commit()
    assert await read(two, lambda uow: uow.timers.get("ring_timeout:s1")) is None
    assert await read(two, lambda uow: uow.timers.get("acw_end:s1")) is None
    stored = await read(two, lambda uow: uow.tasks.get("t1"))
    assert stored is not None and stored.priority == 7


async def _touch_t1(uow: Any) -> None:
    task = await uow.tasks.get("t1")
    task.priority = 7
    await uow.tasks.save(task)


@pytest.fixture
async def throttling(cosmos_server: CosmosServer) -> AsyncIterator[ThrottlingProxy]:
    proxy = await ThrottlingProxy(cosmos_server).start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def open_through(proxy: ThrottlingProxy, options: CosmosOptions) -> CosmosStore:
    client = CosmosClient(proxy.endpoint, proxy.server.key, **options.client_kwargs())
    store = CosmosStore(client, f"throttled-{uuid.uuid4().hex[:8]}", options=options,
                        owned=(client,))
    return await store.open()


async def test_throttled_requests_are_retried_after_the_time_asked(
        throttling: ThrottlingProxy) -> None:
    store = await open_through(throttling, CosmosOptions())
    try:
        throttling.throttle(5, writes_to("tasks"))
        await add_all(store, make_task("t1"))
        assert throttling.throttled == 5
        found = await read(store, lambda uow: uow.tasks.get("t1"))
        assert found is not None and found.version == 1
    finally:
        await store.client.delete_database(store.database_name)
        await store.close()


async def test_throttling_beyond_the_retry_budget_is_store_unavailable(
        throttling: ThrottlingProxy) -> None:
    store = await open_through(throttling, CosmosOptions(retry_total=2))
    try:
        throttling.throttle(100, writes_to("tasks"))
        with pytest.raises(StoreUnavailable, match="429"):
            await add_all(store, make_agent("a1"), make_task("t1"))
        assert throttling.throttled == 3  # the request and its two retries
        throttling.throttle(0, writes_to("tasks"))
        assert await read(store, lambda uow: uow.agents.get("a1")) is None  # undone
    finally:
        await store.client.delete_database(store.database_name)
        await store.close()
