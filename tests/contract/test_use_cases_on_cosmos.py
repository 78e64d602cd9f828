"""The use-case unit tests (tests/unit: distribution and lifecycle), run again on Cosmos DB.

They are written against the ports through the Engine, so they double as a contract: the same
scenarios must give the same results on the emulator as on SQLite (which tests/unit covers).
"""

from __future__ import annotations

import pytest

from tests.contract.conftest import Backend, CosmosBackend
from tests.cosmos_server import CosmosServer
from tests.unit.test_distribution import *  # noqa: F403
from tests.unit.test_lifecycle import *  # noqa: F403


@pytest.fixture
def backend(cosmos_server: CosmosServer) -> Backend:
    """Cosmos DB only: the `store` and `engine` fixtures the imported tests use follow it."""
    return CosmosBackend(cosmos_server)
