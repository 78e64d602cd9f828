"""Shared fixtures: a fake clock, a real SQLite store in a temp dir, and an engine on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.bootstrap import build_engine
from bot.domain.service import Catalog
from bot.services.engine import Engine
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.fakes import FakeClock

pytest_plugins = [
    "tests.standins.fixtures", "tests.playground.fixtures", "tests.support.fixtures",
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "switchboard.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore(db_path).open()
    yield opened
    await opened.close()


@pytest.fixture
def services() -> Catalog:
    return catalog({"id": "sales"})


@pytest.fixture
def engine(store: SqliteStore, clock: FakeClock, services: Catalog) -> Engine:
    return build_engine(store, clock, services)
