"""The board's read and the supervisor's actions (tests/board/test_board_query.py), run again
on Cosmos DB: the same scene must give the same queue, agents, sessions and figures."""

from __future__ import annotations

import pytest

from tests.board.test_board_query import *  # noqa: F403
from tests.contract.conftest import Backend, CosmosBackend
from tests.cosmos_server import CosmosServer


@pytest.fixture
def backend(cosmos_server: CosmosServer) -> Backend:
    """Cosmos DB only: the `store` and `engine` fixtures the imported tests use follow it."""
    return CosmosBackend(cosmos_server)
