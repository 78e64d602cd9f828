"""My Sessions in Debian's headless Chromium, in local mode, after scripted chats: the dev
sign-in, the table with codes and tags, search and filters that narrow it, a details pane
that says what the detail card says, a wrap-up saved from the page once (a second save is
refused), and no serious accessibility violation (axe-core)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.customer import Customer
from bot.domain.service import Modality
from bot.services.dispatch import create_task
from tests.builders import catalog
from tests.cards.walk import of_type
from tests.e2e import tabs_page as tab
from tests.e2e.cdp import ARTIFACTS, Browser, Page, js
from tests.support.cards import find_action
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually
from tests.support.world import World, running_world

pytestmark = tab.TAB_PAGE_TESTS

SERVICES = catalog(
    {"id": "sales", "name": "Sales", "codes": {"primary": ["Sale", "No sale"]},
     "context": {"store_data": True}},
    {"id": "support", "name": "Support", "codes": {"primary": ["Solved", "Callback"]}},
)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with tab.tab_world(SERVICES, tmp_path) as running:
        yield running


async def opened(browser: Browser) -> Page:
    return await browser.new_page(width=1280, height=900)


async def chat(world: World, agent: TeamsAgent, service: str, name: str) -> str:
    """A customer opens a chat; the agent accepts it, and ends it with `end`."""
    async with world.client.post(world.server.make_url("/api/interact/v1/chats"), json={
            "service": service, "text": "Hello there",
            "customer": {"name": name, "email": f"{name.split()[0].lower()}@example.net"},
    }) as reply:
        assert reply.status == 201, await reply.text()
    invitation = await eventually(lambda: next(iter(agent.buttons("accept")), None))
    action = find_action(invitation["card"], "accept")
    assert action is not None
    session_id = str(action["data"]["session_id"])
    await agent.click("accept", action["data"], reply_to=invitation["id"])
    world.clock.advance(42)
    await agent.say("end")
    await world.settle()
    return session_id


async def scripted_day(world: World) -> tuple[TeamsAgent, str, str]:
    """Agent 1 wraps up a Sales chat with Jane Doe in Teams (code Sale, tag VIP) and ends
    after-call work; a Support chat with Sam Smith stays in after-call work, not saved."""
    agent = world.agent(1)
    await agent.register()
    jane = await chat(world, agent, "sales", "Jane Doe")
    await agent.click("save_wrapup", {"session_id": jane, "primary_code": "Sale",
                                      "tags": "VIP"})
    await agent.click("end_acw", {"session_id": jane})
    await world.settle()
    sam = await chat(world, agent, "support", "Sam Smith")
    return agent, jane, sam


async def table(page: Page) -> list[dict[str, str]]:
    return list(await page.evaluate("""[...document.querySelectorAll('#rows tr')].map(r => {
        const c = [...r.cells].map(td => td.textContent);
        return {customer: c[1], service: c[2], type: c[3], result: c[4], waited: c[5],
                talked: c[6], codes: c[7], tags: c[8], id: r.dataset.id};
    })"""))


async def customers_after(page: Page, change: str) -> list[str]:
    """Set the filters (JavaScript assignments), press Search, and read the customers shown."""
    loads = await page.evaluate("document.body.dataset.loads")
    await page.evaluate(change)
    await page.click("#filters button[type=submit]")
    await page.wait_for(f"document.body.dataset.loads !== {js(loads)}")
    return [row["customer"] for row in await table(page)]


def card_facts(card: dict[str, Any]) -> list[list[list[str]]]:
    """The (title, value) rows of each FactSet of a card, in order."""
    return [[[f["title"], f["value"]] for f in facts["facts"]]
            for facts in of_type(card, "FactSet")]


async def pane_facts(page: Page, selector: str) -> list[list[str]]:
    return list(await page.evaluate(f"""(() => {{
        const items = [...document.querySelectorAll({js(selector + ' > *')})];
        const rows = [];
        for (let i = 0; i < items.length; i += 2) rows.push([items[i].textContent,
                                                             items[i + 1].textContent]);
        return rows;
    }})()"""))


async def open_details(page: Page, session_id: str) -> None:
    await tab.front(page)
    await page.click(f"#rows tr[data-id={js(session_id)}] button.open")
    await page.wait_for(f"document.body.dataset.opened === {js(session_id)}")
    assert await page.evaluate("document.querySelector('#details').hidden") is False
    assert await page.evaluate("document.activeElement.id") == "details-title"


async def test_my_sessions_after_a_scripted_day(world: World, browser: Browser) -> None:
    agent, jane, sam = await scripted_day(world)
    page = await opened(browser)
    await tab.sign_in(page, world.base_url)

    rows = await table(page)
    assert [(r["id"], r["customer"], r["service"]) for r in rows] == [
        (sam, "Sam Smith", "Support"), (jane, "Jane Doe", "Sales")]
    assert rows[1]["codes"] == "Sale" and rows[1]["tags"] == "VIP"
    assert rows[1]["result"] == "Accepted" and rows[1]["talked"] == "42 seconds"
    assert rows[0]["result"] == "After-call work" and rows[0]["codes"] == ""
    await page.screenshot(ARTIFACTS / "tabs-my-sessions.png")

    # Search (the card's fields) and filters narrow the table.
    assert await customers_after(page, "document.querySelector('#q').value = 'jane'") == [
        "Jane Doe"]
    assert await customers_after(page, "document.querySelector('#q').value = 'vip'") == [
        "Jane Doe"]
    assert await customers_after(page, "document.querySelector('#q').value = ''; "
                                 "document.querySelector('#service').value = 'support'") == [
        "Sam Smith"]
    assert await customers_after(page, "document.querySelector('#service').value = ''; "
                                 "document.querySelector('#modality').value = 'email'") == []
    assert await page.evaluate("document.querySelector('#empty').hidden") is False
    assert await customers_after(page, "document.querySelector('#modality').value = 'im'; "
                                 "document.querySelector('#result').value = 'declined'") == []
    assert await customers_after(page, "document.querySelector('#result').value = 'accepted';"
                                 " document.querySelector('#period').value = 'today'") == [
        "Sam Smith", "Jane Doe"]
    # Sorting by customer, A to Z after a second press.
    await page.click("th[data-sort=customer] button")
    await page.wait_for("document.querySelector('th[data-sort=customer]')"
                        ".getAttribute('aria-sort') === 'descending'")
    await page.click("th[data-sort=customer] button")
    await page.wait_for("document.querySelector('th[data-sort=customer]')"
                        ".getAttribute('aria-sort') === 'ascending' && "
                        "document.querySelector('#rows tr td:nth-child(2)').textContent"
                        " === 'Jane Doe'")

    # The details pane says what the detail card says.
    await open_details(page, jane)
    card = await agent.click("open_session", {"session_id": jane})
    card_rows, *customer = card_facts(card)
    assert await pane_facts(page, "#details-rows") == card_rows
    assert await pane_facts(page, "#details-customer") == (customer[0] if customer else [])
    assert ["Tags", "VIP"] in card_rows and ["Primary code", "Sale"] in card_rows
    assert await page.evaluate("document.querySelector('#wrapup').hidden") is True

    # Sam's entry is open: the wrap-up form, here and in a second tab opened meanwhile.
    other = await opened(browser)
    await tab.sign_in(other, world.base_url)
    await open_details(other, sam)
    await open_details(page, sam)
    assert await page.evaluate("[...document.querySelector('#primary-code').options]"
                               ".map(o => o.value)") == ["", "Solved", "Callback"]
    violations = await tab.axe_violations(page)
    assert violations == [], violations
    await page.screenshot(ARTIFACTS / "tabs-my-sessions-wrapup.png")

    await page.evaluate("document.querySelector('#primary-code').value = 'Callback'")
    await page.click("#tags")
    await page.type("Call back, tomorrow")
    await page.click("#wrapup button[type=submit]")
    await page.wait_for("document.querySelector('#wrapup').hidden")
    await page.wait_for(f"document.querySelector('#rows tr[data-id=\"{sam}\"] .codes')"
                        ".textContent === 'Callback'")
    assert await page.evaluate(f"document.querySelector('#rows tr[data-id=\"{sam}\"] .tags')"
                               ".textContent") == "Call back, tomorrow"

    # The second tab still shows the form: its save is refused, with the card's sentence.
    await tab.front(other)
    await other.evaluate("document.querySelector('#primary-code').value = 'Solved'")
    await other.click("#wrapup button[type=submit]")
    message = await other.wait_for("document.querySelector('#wrapup-message').textContent")
    assert "already saved" in message
    card = await agent.click("open_session", {"session_id": sam})
    assert ["Primary code", "Callback"] in card_facts(card)[0]

    for opened_page in (page, other):
        assert opened_page.dialogs == [] and opened_page.errors == [], opened_page.errors


async def background(page: Page) -> str:
    return str(await page.evaluate("getComputedStyle(document.body).backgroundColor"))


async def test_teams_themes_and_the_browsers_dark_mode_keep_contrast(
        world: World, browser: Browser) -> None:
    _, jane, _ = await scripted_day(world)
    page = await opened(browser)
    await tab.sign_in(page, world.base_url)
    # By keyboard: Enter on an entry opens its details (focus on their heading); Close gives
    # the focus back to the table.
    await page.evaluate(f"document.querySelector('#rows tr[data-id={js(jane)}] button').focus()")
    await page.press("Enter")
    await page.wait_for(f"document.body.dataset.opened === {js(jane)}")
    assert await page.evaluate("document.activeElement.id") == "details-title"
    await page.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "close-details"
    await page.press("Enter")
    await page.wait_for("document.querySelector('#details').hidden")
    assert await page.evaluate("document.activeElement.id") == "sessions-table"
    await open_details(page, jane)
    # Teams' themes, as the page applies them from teams-js (context and theme changes).
    seen = set()
    for theme in ("default", "dark", "contrast"):
        await page.evaluate(f"document.documentElement.dataset.theme = {js(theme)}")
        seen.add(await background(page))
        violations = await tab.axe_violations(page)
        assert violations == [], (theme, violations)
    assert len(seen) == 3
    # Outside Teams the browser's preference holds.
    await page.evaluate("document.documentElement.dataset.theme = 'auto'")
    light = await background(page)
    await page.send("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    assert await background(page) != light
    assert await tab.axe_violations(page) == []
    assert page.errors == []


@pytest.mark.parametrize("path", ["/tabs/sessions", "/tabs/board"])
async def test_outside_teams_with_an_app_id_a_page_says_where_to_open_it(
        tmp_path: Path, browser: Browser, path: str) -> None:
    async with running_world(SERVICES, tmp_path, app_id="3f2504e0-4f89-41d3-9a0c-0305e82c3301",
                             public_host="switchboard.contoso.example") as world:
        await world.engine.run(create_task, "sales", Modality.IM,
                               customer=Customer(name="Ann"), content={"text": "Hello"})
        page = await opened(browser)
        await page.goto(f"{world.base_url}{path}")
        assert await tab.shown_notice(page, timeout=10) == \
            "Open this page in Microsoft Teams: Teams signs you in."
        assert await page.evaluate("document.querySelector('#main').hidden") is True
        assert await page.evaluate("document.querySelector('#dev-signin').hidden") is True
        assert await page.evaluate("document.querySelector('.banner')") is None
        assert "Ann" not in await page.evaluate("document.body.textContent")
        assert page.errors == []


async def test_a_member_who_is_no_agent_is_told_to_register(world: World,
                                                            browser: Browser) -> None:
    page = await opened(browser)
    notice = await tab.refused_sign_in(page, world.base_url, "a3@example.com", "/tabs/sessions")
    assert "not as a registered agent" in notice
    assert await page.evaluate("document.querySelector('#main').hidden") is True
    assert await page.evaluate("document.querySelector('#who').textContent") == \
        "Signed in as a3@example.com"
