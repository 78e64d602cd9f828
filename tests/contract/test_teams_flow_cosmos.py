"""The Teams flow of tests/integration/test_teams_flow.py, with the app on Cosmos DB (the emulator).

install → register → chat → invitation → Accept → relay both ways → Terminate → wrap-up → saved
→ after-call work runs out (a timer) → done.
The scenarios are tests/integration/test_teams_flow.py's own functions, run on a `world` whose
app stores everything in a fresh emulator database, opened two ways:

- "settings": `Settings(store="cosmos", cosmos_endpoint=..., cosmos_key=..., cosmos_database=...)`,
  so the app opens (and closes) its store through `open_cosmos`, as in production;
- "injected": `create_app(storage=<an open CosmosStore>)`.

Afterwards a second, independent CosmosStore on the same database (another instance) reads back
what the flow stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from azure.cosmos.aio import CosmosClient

from bot.domain import events as ev
from bot.domain.message import Kind
from bot.domain.session import Phase
from bot.domain.task import TaskResult, TaskState
from bot.storage.cosmos import CosmosStore
from tests.builders import catalog
from tests.contract.conftest import CosmosBackend
from tests.cosmos_server import CosmosServer
from tests.integration import test_teams_flow as teams_flow
from tests.support.world import World, running_world


@pytest.fixture(params=["settings", "injected"])
async def world(request: pytest.FixtureRequest, tmp_path: Path,
                cosmos_server: CosmosServer) -> AsyncIterator[World]:
    # The catalog of tests/integration/test_teams_flow.py's `world`.
    services = catalog({"id": "sales", "name": "Sales",
                        "codes": {"primary": ["Sale", "No sale"]}}, {"id": "support"})
    backend = CosmosBackend(cosmos_server)
    try:
        if request.param == "settings":
            async with running_world(services, tmp_path, store="cosmos",
                                     cosmos_endpoint=cosmos_server.endpoint,
                                     cosmos_key=cosmos_server.key,
                                     cosmos_database=backend.database) as running:
                yield running
        else:
            store = await backend.open()
            async with running_world(services, tmp_path,
                                     app_options={"storage": store}) as running:
                yield running
    finally:
        if not backend.stores:  # the app opened (and closed) its own store: drop the database
            async with CosmosClient(cosmos_server.endpoint, cosmos_server.key) as client:
                await client.delete_database(backend.database)
        await backend.close()


async def test_install_register_and_help_on_cosmos(world: World) -> None:
    assert isinstance(world.engine.store, CosmosStore)
    await teams_flow.test_install_register_and_help(world)


async def test_whole_im_flow_on_cosmos(world: World, cosmos_server: CosmosServer) -> None:
    store = world.engine.store
    assert isinstance(store, CosmosStore)
    await teams_flow.test_whole_im_flow_local_mode(world)
    await world.advance(21)  # after-call work (20 s by default) runs out: the task is done

    # Another instance on the same database sees what the flow stored.
    other = CosmosBackend(cosmos_server)
    other.database = store.database_name
    reader = await other.open()
    try:
        async with reader.unit_of_work() as uow:
            assert await uow.tasks.live() == []  # the wrap-up is saved: nothing is live
            agent = await uow.agents.get("29:agent-1")
            assert agent is not None and agent.registered and agent.engagements == []
            events = await uow.events.after(0, 10**6)
            [created] = [e for e in events if e.name == ev.TASK_CREATED]
            assert created.task_id is not None
            stored = await uow.tasks.get(created.task_id)
            assert stored is not None
            assert (stored.state, stored.result) == (TaskState.DONE, TaskResult.HANDLED)
            [session] = await uow.sessions.for_task(stored.id)
            assert session.phase is Phase.ENDED and session.saved_at is not None
            assert (session.primary_code, session.tags) == ("Sale", ["VIP"])
            messages = await uow.messages.after(stored.id, 0, 100)
            # The service stores no context: at the conclusion the chat lines went (issue 20),
            # the rows that told the customer how it went stay.
            assert [m for m in messages if m.kind is Kind.MESSAGE] == []
            assert [m.kind for m in messages][-1] is Kind.ENDED
            names = [e.name for e in events if e.task_id == stored.id]
            for name in (ev.OFFER_CREATED, ev.OFFER_ACCEPTED, ev.SESSION_CONNECTED,
                         ev.SESSION_TERMINATED, ev.ACW_STARTED, ev.SESSION_SAVED, ev.ACW_ENDED,
                         ev.TASK_DONE):
                assert names.count(name) == 1, (name, names)
    finally:
        other.stores.clear()  # close only our reader: the database is the world's to drop
        await reader.close()
