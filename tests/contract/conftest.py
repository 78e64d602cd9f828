"""Both storage backends behind one fixture: SQLite in a temp file, Cosmos DB on the emulator.

`backend` is parametrized over "sqlite" and "cosmos"; `await backend.open()` opens a store on
the backend's data, and opening it again gives a second, independent store on the same data (a
second app instance: its own SQLite connection, or its own CosmosClient). Every Cosmos test gets
a fresh database on the one emulator the session starts (`tests/cosmos_server.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

import pytest
from azure.cosmos.aio import CosmosClient

from bot.services.ports import Store
from bot.storage.cosmos import CosmosOptions, CosmosStore
from bot.storage.sqlite import SqliteStore
from tests.cosmos_server import CosmosServer
from tests.support.node import skip_without_node

BACKENDS = ["sqlite", "cosmos"]


@pytest.fixture(scope="session")
def cosmos_server() -> Iterator[CosmosServer]:
    skip_without_node("@vercel/cosmosdb-server")
    server = CosmosServer().start()
    try:
        yield server
    finally:
        server.stop()


class Backend(Protocol):
    name: str

    async def open(self) -> Store: ...
    async def close(self) -> None: ...


class SqliteBackend:
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stores: list[SqliteStore] = []

    async def open(self) -> Store:
        store = await SqliteStore(self.path).open()
        self.stores.append(store)
        return store

    async def close(self) -> None:
        for store in self.stores:
            await store.close()


class CosmosBackend:
    name = "cosmos"

    def __init__(self, server: CosmosServer, options: CosmosOptions | None = None) -> None:
        self.server = server
        self.options = options or CosmosOptions()
        self.database = f"contract-{uuid.uuid4().hex[:12]}"
        self.stores: list[CosmosStore] = []

    def client(self) -> CosmosClient:
        return CosmosClient(self.server.endpoint, self.server.key,
                            **self.options.client_kwargs())

    async def open(self, options: CosmosOptions | None = None) -> CosmosStore:
        client = self.client()
        store = CosmosStore(client, self.database, options=options or self.options,
                            owned=(client,))
        self.stores.append(await store.open())
        return store

    async def close(self) -> None:
        if self.stores:
            await self.stores[0].client.delete_database(self.database)
        for store in self.stores:
            await store.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return SqliteBackend(tmp_path / "contract.db")
    server: CosmosServer = request.getfixturevalue("cosmos_server")
    return CosmosBackend(server)


@pytest.fixture
async def cosmos(cosmos_server: CosmosServer) -> AsyncIterator[CosmosBackend]:
    """A Cosmos DB backend alone (a fresh database on the emulator), for Cosmos-only tests."""
    backend = CosmosBackend(cosmos_server)
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    """Overrides the SQLite-only `store` of tests/conftest.py (and so its `engine`)."""
    try:
        yield await backend.open()
    finally:
        await backend.close()
