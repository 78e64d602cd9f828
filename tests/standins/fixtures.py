"""Pytest fixtures for the stand-ins: register with pytest_plugins in tests/conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.standins import FakeMonotonicClock
from tests.standins.connector import ConnectorStandin
from tests.standins.graph import GraphStandin, TokenStandin

# Stand-ins enforcing the Teams limits run them 50x faster in integration tests.
LIMITS_TIME_SCALE = 0.02


@pytest.fixture
def fake_monotonic_clock() -> FakeMonotonicClock:
    return FakeMonotonicClock()


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    """One pooled client session per test."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def connector_standin() -> AsyncIterator[ConnectorStandin]:
    """A Bot Connector stand-in without limits."""
    async with ConnectorStandin() as standin:
        yield standin


@pytest.fixture
async def limited_connector_standin() -> AsyncIterator[ConnectorStandin]:
    """A Bot Connector stand-in enforcing the Teams limits at ``LIMITS_TIME_SCALE``."""
    async with ConnectorStandin(enforce_limits=True, time_scale=LIMITS_TIME_SCALE) as standin:
        yield standin


@pytest.fixture
async def make_connector_standin() -> AsyncIterator[Callable[..., Awaitable[ConnectorStandin]]]:
    """Factory: ``await make_connector_standin(enforce_limits=True, time_scale=0.05)``."""
    started: list[ConnectorStandin] = []

    async def make(**options: Any) -> ConnectorStandin:
        standin = await ConnectorStandin(**options).start()
        started.append(standin)
        return standin

    yield make
    for standin in started:
        await standin.close()


@pytest.fixture
async def graph_standin() -> AsyncIterator[GraphStandin]:
    """A Graph stand-in with the Switchboard app in its catalog (external id ``switchboard``)."""
    async with GraphStandin(catalog={"switchboard": "catalog-app-1"}) as standin:
        yield standin


@pytest.fixture
async def token_standin() -> AsyncIterator[TokenStandin]:
    """An Entra ID token endpoint stand-in accepting client ``app-id`` / ``app-secret``."""
    async with TokenStandin(clients={"app-id": "app-secret"}) as standin:
        yield standin
