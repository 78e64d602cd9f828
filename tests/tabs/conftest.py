"""The tenant's key set, served over a real socket, for the tabs' token tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.tabs.entra_standin import EntraKeys


@pytest.fixture
async def entra() -> AsyncIterator[EntraKeys]:
    async with EntraKeys() as keys:
        yield keys
