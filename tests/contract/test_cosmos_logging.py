"""A Cosmos-backed app logging at INFO writes no line per Cosmos DB request.

azure-core's HTTP logging policy logs every request and response at INFO (method, URL with the
document's id, headers); the app caps the `azure` loggers at WARNING, whatever the root level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.cosmos.aio import CosmosClient

from tests.builders import catalog
from tests.contract.conftest import CosmosBackend
from tests.cosmos_server import CosmosServer
from tests.support.logs import CapturedLogs, capturing_logs
from tests.support.world import running_world


@pytest.fixture
def at_info() -> Iterator[CapturedLogs]:
    with capturing_logs(logging.INFO) as handler:
        yield handler


async def test_cosmos_requests_are_not_logged_at_info(tmp_path: Path, at_info: CapturedLogs,
                                                      cosmos_server: CosmosServer) -> None:
    backend = CosmosBackend(cosmos_server)
    try:
        async with running_world(catalog({"id": "sales", "name": "Sales"}), tmp_path,
                                 store="cosmos", cosmos_endpoint=cosmos_server.endpoint,
                                 cosmos_key=cosmos_server.key,
                                 cosmos_database=backend.database) as world:
            await world.agent(1).register()
    finally:
        async with CosmosClient(cosmos_server.endpoint, cosmos_server.key) as client:
            await client.delete_database(backend.database)
    assert logging.getLogger().getEffectiveLevel() == logging.INFO  # the app logs at INFO
    azure = [r for r in at_info.records if r.name == "azure" or r.name.startswith("azure.")]
    assert azure == [], f"{len(azure)} azure log lines, e.g. {azure[0].getMessage()[:200]}"
    assert logging.getLogger("azure").getEffectiveLevel() >= logging.WARNING
