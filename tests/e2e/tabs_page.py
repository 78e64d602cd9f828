"""What every tab page's end-to-end test does: sign in (local mode's dev sign-in), bring a tab
to the front, and ask axe-core for serious or critical accessibility violations."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.domain.service import Catalog
from tests.e2e.cdp import CHROMIUM, Page
from tests.support.node import NODE_MODULES
from tests.support.world import World, running_world

AXE = NODE_MODULES / "axe-core" / "axe.min.js"

TAB_PAGE_TESTS = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at "
                       "/usr/bin/chromium (make e2e-deps)"),
    pytest.mark.needs_node("axe-core"),
]
"""The marks of a module of tab page tests (its `pytestmark`)."""


@asynccontextmanager
async def tab_world(services: Catalog, tmp_path: Path) -> AsyncIterator[World]:
    """Switchboard in local mode, its outbound pacing on a scaled clock (the agents' personal
    chats are busy in these tests, and their pace is not the subject)."""
    async with running_world(services, tmp_path,
                             app_options={"connector_time_scale": 0.01}) as running:
        yield running


async def sign_in(page: Page, base_url: str, member: str = "a1@example.com",
                  path: str = "/tabs/sessions") -> None:
    """Open the page and sign in as `member` (a member of the services file) with the dev
    sign-in under its "Local mode" banner; returns once the page says it is ready."""
    await _pick(page, base_url, member, path)
    await page.wait_for("document.body.dataset.ready === 'true'")
    # Local mode never loads the Teams client (nor its call to Microsoft's CDN).
    assert await page.evaluate("typeof window.microsoftTeams") == "undefined"


async def refused_sign_in(page: Page, base_url: str, member: str, path: str) -> str:
    """Sign in as `member` where the page then refuses them: the notice it shows instead."""
    await _pick(page, base_url, member, path)
    return await shown_notice(page)


async def shown_notice(page: Page, timeout: float = 8.0) -> str:
    """The notice a page shows in place of its content (a refusal, or where to open it)."""
    return str(await page.wait_for("!document.querySelector('#notice').hidden && "
                                   "document.querySelector('#notice').textContent",
                                   timeout=timeout))


async def _pick(page: Page, base_url: str, member: str, path: str) -> None:
    await page.goto(f"{base_url}{path}")
    await page.wait_for("!document.querySelector('#dev-signin').hidden")
    assert await page.evaluate("document.querySelector('.banner').textContent"
                               ".startsWith('Local mode')")
    await page.evaluate(f"document.querySelector('#dev-member').value = {json.dumps(member)}")
    await page.click("#dev-signin button[type=submit]")


async def front(page: Page) -> None:
    """Make the tab the one shown: Chromium holds back a background tab's work for seconds."""
    await page.send("Page.bringToFront")


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    found = await page.evaluate("axe.run(document, {resultTypes: ['violations']})"
                                ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact,"
                                " nodes: v.nodes.map(n => n.target.join(' '))})))")
    return [v for v in found if v["impact"] in ("serious", "critical")]
