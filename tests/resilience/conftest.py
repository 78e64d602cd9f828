"""Fixtures for the resilience suite: the real server process, a connector stand-in, clients.

Every server started through `launch` is killed (whole process group, SIGKILL) at teardown,
and its log is attached to the report of a failing test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.resilience.harness import (
    SERVERS_KEY,
    Launch,
    ServerProcess,
    attach,
    new_server,
)
from tests.standins.connector import ConnectorStandin


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None],
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for server in item.stash.get(SERVERS_KEY, []):
            report.sections.append((f"{server.name} log ({server.log_path})",
                                    server.log_tail()))
    return report


@pytest.fixture
def launch(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Launch]:
    """`launch(**services_options)`: a started (not yet ready) server on a new temp database."""
    started: list[ServerProcess] = []

    def start(*, name: str = "switchboard", env: dict[str, str] | None = None,
              **services: Any) -> ServerProcess:
        workdir = tmp_path / name
        workdir.mkdir()
        server = new_server(workdir, name=name, env=env, **services)
        attach(request.node, server)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def connector() -> AsyncIterator[ConnectorStandin]:
    async with ConnectorStandin() as standin:
        yield standin


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session
