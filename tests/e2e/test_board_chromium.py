"""The supervisor board in Debian's headless Chromium, in local mode: a supervisor who is no
agent signs in with the dev sign-in; today's figures match a scripted scene; a task queued
meanwhile appears within 1 s over the stream; "Offer" sends that agent's invitation card
through the Bot Connector stand-in and "Withdraw" (confirmed first) ends it; an agent who
supervises nothing is told so and shown nothing; outside Teams with an app id the page says
where to open it; after a network drop the page connects again (backing off) and catches up;
no serious accessibility violation in any Teams theme (axe-core)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.customer import Customer
from bot.domain.service import Modality
from bot.services import supervision
from bot.services.board import Supervisor
from bot.services.dispatch import create_task
from tests.builders import catalog
from tests.e2e import tabs_page as tab
from tests.e2e.cdp import ARTIFACTS, Browser, Page, js
from tests.e2e.relay import Relay
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually
from tests.support.world import World

pytestmark = tab.TAB_PAGE_TESTS

BOSS = "boss@example.com"  # supervises Sales; no agent
SERVICES = catalog({"id": "sales", "name": "Sales", "supervisors": [BOSS]})
# The page counts the day from midnight where the browser is: Berlin, an hour before UTC's.
ZONE = "Europe/Berlin"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with tab.tab_world(SERVICES, tmp_path) as running:
        yield running


async def opened(browser: Browser) -> Page:
    page = await browser.new_page(width=1280, height=1000)
    await page.send("Emulation.setTimezoneOverride", {"timezoneId": ZONE})
    return page


async def new_task(world: World, name: str) -> str:
    task = await world.engine.run(create_task, "sales", Modality.IM,
                                  customer=Customer(name=name), content={"text": "Hello"})
    return task.id


async def decline_next(agent: TeamsAgent) -> str:
    """The agent declines the invitation ringing for them; the card's activity id."""
    [(card_id, card)] = await eventually(lambda: agent.cards_with("decline"))
    await agent.press(card, "decline", reply_to=card_id)
    await eventually(lambda: not agent.cards_with("accept"))
    return card_id


async def scripted_day(world: World) -> tuple[TeamsAgent, TeamsAgent]:
    """09:00 UTC: Ann's chat rings Agent 1, who accepts after 15 s (answered within the 20 s
    threshold); Cara's rings Agent 2, who declines; the supervisor withdraws it 40 s later
    (cancelled after 40 s). Agent 1 stays connected with Ann; Agent 2 is available."""
    one, two = world.agent(1), world.agent(2)
    await one.register()
    await two.register()
    await new_task(world, "Ann")
    [invitation] = await eventually(lambda: one.buttons("accept"))
    world.clock.advance(15)
    await one.accept(invitation)
    cara = await new_task(world, "Cara")
    await decline_next(two)
    world.clock.advance(40)
    await world.engine.run(supervision.withdraw, Supervisor(BOSS), cara)
    await world.settle()
    return one, two


async def rows(page: Page, kind: str) -> list[list[str]]:
    """The cells' text of the Sales service's `kind` table (queue, agents, sessions)."""
    return list(await page.evaluate(f"""[...document.querySelectorAll(
        '#{kind}--sales tbody tr:not(.empty)')].map(r => [...r.cells].map(c =>
        c.querySelector('select, button') ? '' : c.textContent))"""))


async def numbers(page: Page, chart: str) -> list[list[str]]:
    """A chart's numbers, from the table that goes with it."""
    return list(await page.evaluate(f"""[...document.querySelectorAll(
        '[data-service=sales] [data-chart={chart}] tbody tr')].map(r =>
        [...r.cells].map(c => c.textContent))"""))


async def test_the_board_live_with_offer_and_withdraw(world: World, browser: Browser) -> None:
    _one, two = await scripted_day(world)
    page = await opened(browser)
    await tab.sign_in(page, world.base_url, BOSS, path="/tabs/board")
    assert await page.evaluate("document.querySelector('#who').textContent") == \
        f"Signed in as {BOSS}"

    # Today's figures (the day from midnight in Berlin: 23:00 UTC) match the scene.
    assert await page.evaluate("document.querySelector('[data-service=sales] .level')"
                               ".textContent") == \
        "Service level 50%: 1 of 2 answered within 20 s."
    hours = await numbers(page, "hours")
    assert [h[0] for h in hours] == [f"{h:02d}:00" for h in range(0, 11)]
    assert hours[-1] == ["10:00", "1", "1", "0", "0"]  # 09:00 UTC
    assert all(h[1:] == ["0", "0", "0", "0"] for h in hours[:-1])
    assert await numbers(page, "waits") == [
        ["up to 10 s", "0", "0"], ["up to 20 s", "1", "0"], ["up to 30 s", "0", "0"],
        ["up to 1 min", "0", "1"], ["up to 2 min", "0", "0"],
        ["up to 5 min", "0", "0"], ["over 5 min", "0", "0"]]
    assert await numbers(page, "level") == [
        ["Answered within 20 s", "1", "50%"], ["Answered later", "0", "0%"],
        ["Cancelled or expired", "1", "50%"]]
    # The charts draw those numbers: stacked bars per hour, the threshold on the waits.
    assert await page.evaluate("document.querySelectorAll('[data-chart=hours] rect.bar')"
                               ".length") == 2
    assert await page.evaluate("document.querySelector('[data-chart=waits] .threshold-label')"
                               ".textContent") == "threshold 20 s"
    assert await rows(page, "queue") == []
    assert [r[:2] for r in await rows(page, "agents")] == [
        ["Agent 1", "Busy"], ["Agent 2", "Available"]]
    assert [r[:4] for r in await rows(page, "sessions")] == [
        ["Agent 1", "Ann", "Chat", "Connected"]]

    # A task queued now is on the board within a second, over the stream.
    await tab.front(page)
    started = time.monotonic()
    bob = await new_task(world, "Bob")
    await page.wait_for(f"!!document.querySelector('tr[data-task={js(bob)}]')", timeout=1.0)
    assert time.monotonic() - started < 1.0
    declined = await decline_next(two)  # held back from Agent 2 for now: queued
    row = f"tr[data-task={js(bob)}]"
    await page.wait_for(f"document.querySelector('{row} td:nth-child(6)').textContent"
                        " === 'Queued'")
    [queued] = await rows(page, "queue")
    assert queued[0:2] == ["Bob", "Chat"] and queued[3:6] == ["0", "Sales", "Queued"]
    assert await page.evaluate(f"[...document.querySelector('{row} select').options]"
                               ".map(o => o.textContent)") == ["Agent 2"]
    violations = await tab.axe_violations(page)
    assert violations == [], violations
    await page.screenshot(ARTIFACTS / "tabs-board.png")

    # The board holds still while a choice is being made; a choice overtaken by events is
    # refused, and the refusal is said.
    await page.evaluate(f"document.querySelector('{row} select').focus()")
    updates = await page.evaluate("document.body.dataset.updates")
    await two.say("duty Off Duty")
    await page.wait_for("document.body.dataset.held === 'true'")  # a new board, held back
    said = await page.evaluate("document.body.dataset.said || '0'")
    await page.evaluate(f"document.querySelector('{row} button.offer').click()")
    await page.wait_for(f"(document.body.dataset.said || '0') !== {js(said)}")
    assert await page.evaluate("document.querySelector('#said').textContent") == \
        "Not done: Agent 2 cannot take this task now: they are off duty."
    assert await page.evaluate("document.body.dataset.updates") == updates
    await page.evaluate("document.activeElement.blur()")
    await page.wait_for(f"document.querySelector('{row} select').textContent"
                        " === 'No agent available' && !document.body.dataset.held")
    await two.say("duty Duty")
    await page.wait_for(f"document.querySelector('{row} select').textContent === 'Agent 2'")
    assert not two.cards_with("accept")

    # "Offer" sends Agent 2 a new invitation through the Bot Connector.
    said = await page.evaluate("document.body.dataset.said || '0'")
    await page.click(f"{row} button.offer")
    await page.wait_for(f"(document.body.dataset.said || '0') !== {js(said)}")
    assert await page.evaluate("document.querySelector('#said').textContent") == \
        "Bob is offered to Agent 2."
    [(invite_id, invite)] = await eventually(lambda: two.cards_with("accept"))
    assert invite_id != declined and "Bob" in json.dumps(invite)
    await page.wait_for(f"document.querySelector('{row} td:nth-child(6)').textContent"
                        " === 'Being offered to Agent 2'")

    # "Withdraw" asks first; Escape keeps the task.
    await page.click(f"{row} button.withdraw")
    await page.wait_for("document.querySelector('#confirm').open")
    assert "Withdraw Bob's task from Sales?" in await page.evaluate(
        "document.querySelector('#confirm-text').textContent")
    assert await page.evaluate("document.activeElement.id") == "confirm-no"
    await page.press("Escape")
    await page.wait_for("!document.querySelector('#confirm').open && document.querySelector("
                        "'#said').textContent === \"Bob's task stays queued.\"")
    assert await page.evaluate("document.activeElement.classList.contains('withdraw')")
    assert two.cards_with("accept")
    # ...and confirmed, the task leaves the queue and Agent 2's card says it was withdrawn.
    await page.click(f"{row} button.withdraw")
    await page.wait_for("document.querySelector('#confirm').open")
    await page.click("#confirm-yes")
    await page.wait_for("document.querySelector('#said').textContent === "
                        "\"Bob's task is withdrawn.\"")
    await page.wait_for(f"!document.querySelector('{row}')")
    withdrawn = await eventually(lambda: "Withdrawn" in json.dumps(two.card(invite_id))
                                 and two.card(invite_id))
    assert "A supervisor withdrew the task before it was accepted." in json.dumps(withdrawn)
    # Focus stays on the board (the service's heading) when its button went away.
    assert await page.evaluate("document.activeElement.id") == "service--sales"

    # An agent set off duty from the board.
    await page.click("tr[data-agent] button[id^=off-duty]")
    await page.wait_for("document.querySelector('#said').textContent === "
                        "'Agent 1 is off duty now.'")
    assert page.dialogs == [] and page.errors == [], page.errors


async def test_teams_themes_keep_the_board_accessible(world: World, browser: Browser) -> None:
    await scripted_day(world)
    await new_task(world, "Bob")  # rings Agent 2
    page = await opened(browser)
    await tab.sign_in(page, world.base_url, BOSS, path="/tabs/board")
    await page.wait_for("!!document.querySelector('#queue--sales tbody tr[data-task]')")
    await page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    for theme in ("default", "dark", "contrast"):
        await page.evaluate(f"document.documentElement.dataset.theme = {js(theme)}")
        violations = await tab.axe_violations(page)
        assert violations == [], (theme, violations)
        await page.screenshot(ARTIFACTS / f"tabs-board-{theme}.png")
    # The chart's colours follow the theme.
    fills = set()
    for theme in ("default", "dark", "contrast"):
        await page.evaluate(f"document.documentElement.dataset.theme = {js(theme)}")
        fills.add(await page.evaluate("getComputedStyle(document.querySelector("
                                      "'[data-chart=hours] rect.bar')).fill"))
    assert len(fills) == 3
    assert page.errors == []


async def test_an_agent_who_supervises_nothing_is_told_so_and_shown_nothing(
        world: World, browser: Browser) -> None:
    await scripted_day(world)
    page = await opened(browser)
    notice = await tab.refused_sign_in(page, world.base_url, "a1@example.com", "/tabs/board")
    assert notice == "You do not supervise any service."
    assert await page.evaluate("document.body.dataset.refused") == "403"
    assert await page.evaluate("document.querySelector('#main').hidden") is True
    assert await page.evaluate("document.querySelector('#services').children.length") == 0
    assert "Ann" not in await page.evaluate("document.body.textContent")
    assert await tab.axe_violations(page) == []
    assert page.errors == []


async def test_the_board_connects_again_after_losing_its_stream(world: World,
                                                                browser: Browser) -> None:
    await scripted_day(world)
    async with Relay("127.0.0.1", world.server.port or 0) as relay:
        page = await opened(browser)
        await tab.sign_in(page, relay.origin, BOSS, path="/tabs/board")
        await page.wait_for("document.querySelector('#live').textContent === 'Live'")
        relay.drop()  # the network goes: the stream is cut, new connections refused
        status = await page.wait_for("document.querySelector('#live').textContent"
                                     ".startsWith('Not live') && "
                                     "document.querySelector('#live').textContent")
        assert status == "Not live: connecting again in 1 s…"
        await page.wait_for("document.querySelector('#live').textContent === "
                            "'Not live: connecting again in 2 s…'")  # backing off
        bob = await new_task(world, "Bob")  # while the board cannot hear
        relay.restore()
        await page.wait_for(f"!!document.querySelector('tr[data-task={js(bob)}]')", timeout=5)
        assert await page.evaluate("document.querySelector('#live').textContent") == "Live"
        # ...and it follows changes again.
        dan = await new_task(world, "Dan")
        await page.wait_for(f"!!document.querySelector('tr[data-task={js(dan)}]')", timeout=1)
        assert page.errors == [], page.errors
