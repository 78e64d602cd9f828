"""The browser every end-to-end test drives: Debian's Chromium with a fresh profile."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.cdp import Browser, launch


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    async with launch(tmp_path / "chromium-profile") as running:
        yield running
