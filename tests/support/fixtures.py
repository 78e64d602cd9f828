"""The kit's pytest plugin: the `needs_node` marker, the session's card collector and log
capture."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator

import pytest

from tests.support.cardlog import CardLog
from tests.support.logs import CapturedLogs, capturing_logs
from tests.support.node import pytest_configure, pytest_runtest_setup
from tests.support.world import Serve, serving

__all__ = ["captured", "card_log", "pytest_configure", "pytest_runtest_setup", "serve"]


@pytest.fixture(scope="session")
def card_log() -> CardLog:
    """Every card the session's tests collected (see tests/support/cardlog.py)."""
    return CardLog()


@pytest.fixture
def serve(card_log: CardLog, request: pytest.FixtureRequest) -> Serve:
    """`async with serve(services, db_path, connector=..., clock=...) as world`: the app of
    `tests.support.world.serving`; the cards it showed go to the session's card log."""
    return functools.partial(serving, on_stop=functools.partial(card_log.add_world,
                                                                request.node.nodeid))


@pytest.fixture
def captured() -> Iterator[CapturedLogs]:
    """Everything logged during the test, with the root logger at DEBUG."""
    with capturing_logs(logging.DEBUG) as handler:
        yield handler
