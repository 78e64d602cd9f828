"""The website chat widget in Debian's headless Chromium, against a running Switchboard.

The customer uses the demo page like a person would (real clicks and key presses over the
DevTools protocol); the agent side is the Bot Connector stand-in of tests/support/world.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.builders import catalog
from tests.e2e.cdp import ARTIFACTS, CHROMIUM, Browser, Page, js
from tests.e2e.relay import Relay
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually
from tests.support.world import World, running_world

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)")

SALES = ".launchers li:nth-child(1) .sbw-root"
SUPPORT = ".launchers li:nth-child(2) .sbw-root"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    services = catalog({"id": "sales", "name": "Sales"}, {"id": "support", "name": "Support"})
    async with running_world(services, tmp_path) as running:
        yield running


@pytest.fixture
async def relay(world: World) -> AsyncIterator[Relay]:
    """The browser reaches the app through this, so a test can cut its network."""
    async with Relay("127.0.0.1", world.server.port or 0) as running:
        yield running


@pytest.fixture
async def page(browser: Browser, relay: Relay) -> AsyncIterator[Page]:
    opened = await browser.new_page()
    yield opened
    assert opened.dialogs == [], "a JavaScript dialog opened: page content ran as code"
    assert opened.errors == [], opened.errors


async def rows(page: Page, widget: str = SALES) -> list[str]:
    """The message log as the customer reads it: one string per row."""
    return list(await page.evaluate(
        f"[...document.querySelectorAll({js(widget + ' .sbw-row')})]"
        ".map(r => r.textContent)"))


async def wait_row(page: Page, text: str, widget: str = SALES) -> None:
    await page.wait_for(f"[...document.querySelectorAll({js(widget + ' .sbw-row')})]"
                        f".some(r => r.querySelector('.sbw-text').textContent === {js(text)})")


async def status(page: Page, widget: str = SALES) -> str:
    return str(await page.evaluate(
        f"document.querySelector({js(widget + ' .sbw-status')}).textContent"))


async def focused(page: Page) -> str:
    """What has the keyboard focus: its label, or its own text."""
    return str(await page.evaluate("""(() => {
        const e = document.activeElement;
        return e.labels && e.labels.length ? e.labels[0].textContent
             : (e.getAttribute('aria-label') || e.textContent);
    })()"""))


async def accept(agent: TeamsAgent) -> None:
    [invitation] = await eventually(lambda: agent.buttons("accept"))
    await agent.accept(invitation)


async def start_chat(page: Page, relay: Relay, name: str, first: str) -> None:
    await page.goto(f"{relay.origin}/")
    await page.wait_for("document.querySelectorAll('.sbw-launcher').length === 2")
    await page.click(f"{SALES} .sbw-launcher")
    assert await focused(page) == "Name (optional)"
    await page.type(name)
    await page.press("Tab")
    assert await focused(page) == "Email (optional)"
    await page.press("Tab")
    await page.type(first)
    await page.press("Enter")
    await page.wait_for(f"!document.querySelector({js(SALES + ' .sbw-chat')}).hidden")


async def say_in_widget(page: Page, text: str, widget: str = SALES) -> None:
    await page.wait_for(f"document.activeElement === "
                        f"document.querySelector({js(widget + ' .sbw-compose textarea')})")
    await page.type(text)
    await page.press("Enter")


async def test_customer_chats_with_an_agent(world: World, relay: Relay, page: Page) -> None:
    await page.goto(f"{relay.origin}/")
    # One widget per script tag, each with its own dialog, ids and label.
    labels = await page.wait_for("(() => { const l = [...document.querySelectorAll("
                                 "'.sbw-launcher')].map(b => b.textContent);"
                                 " return l.length === 2 && l; })()")
    assert labels == ["Chat with Sales", "Chat with Support"]
    assert await page.evaluate("new Set([...document.querySelectorAll('[role=dialog]')]"
                               ".map(d => d.id)).size") == 2

    # No agent is ready yet: the customer waits in the queue and is told where.
    await start_chat(page, relay, "Jane Doe", "Hi, I need a quote 😀")
    await wait_row(page, "Hi, I need a quote 😀")
    await page.wait_for(f"document.querySelector({js(SALES + ' .sbw-status')}).textContent"
                        " === 'You are number 1 in the queue'")

    agent = world.agent(1)
    await agent.register()
    await accept(agent)
    await wait_row(page, "Agent 1 from Sales joined")
    assert await status(page) == "You are chatting with Agent 1."

    await agent.say("Hello Jane! How can I help? 👋")
    await wait_row(page, "Hello Jane! How can I help? 👋")
    agent_row = next(r for r in await rows(page) if "How can I help" in r)
    assert agent_row.startswith("Agent 1")  # sender and time above the text

    await say_in_widget(page, "Can I get 10% off?")
    await eventually(lambda: "Jane Doe: Can I get 10% off?" in agent.texts())

    # Markup typed by the customer stays text: shown literally, no element, no script.
    await say_in_widget(page, XSS)
    await wait_row(page, XSS)
    assert await page.evaluate("document.querySelectorAll('.sbw-root img').length") == 0
    await eventually(lambda: f"Jane Doe: {XSS}" in agent.texts())
    await page.screenshot(ARTIFACTS / "widget-mid-chat.png", f"{SALES} .sbw-dialog")

    # A reload continues the chat from sessionStorage: same rows, no duplicates, live again.
    before = await rows(page)
    await page.reload()
    await page.wait_for(f"document.querySelectorAll({js(SALES + ' .sbw-row')}).length"
                        f" === {len(before)}")
    assert await rows(page) == before
    await agent.say("Still there?")
    await wait_row(page, "Still there?")
    assert len(await rows(page)) == len(before) + 1

    await agent.say("end")
    await wait_row(page, "Agent 1 ended the chat.")
    assert await status(page) == "The chat has ended."
    assert await page.evaluate(f"document.querySelector({js(SALES + ' .sbw-compose textarea')})"
                               ".disabled") is True
    # Escape closes the dialog and gives the focus back to the launcher.
    await page.click(f"{SALES} .sbw-log")
    await page.press("Escape")
    assert await page.evaluate(f"document.querySelector({js(SALES + ' .sbw-dialog')}).hidden")
    assert await focused(page) == "Chat with Sales"
    assert await page.evaluate("document.activeElement.getAttribute('aria-expanded')") == "false"


async def test_reconnects_after_a_network_drop(world: World, relay: Relay, page: Page) -> None:
    agent = world.agent(1)
    await agent.register()
    await start_chat(page, relay, "Sam", "Hello")
    await accept(agent)
    await wait_row(page, "Agent 1 from Sales joined")
    await agent.say("First answer")
    await wait_row(page, "First answer")

    relay.drop()
    await page.wait_for(f"document.querySelector({js(SALES + ' .sbw-status')}).textContent"
                        ".startsWith('Connection lost')")
    await agent.say("Sent while you were away")
    await agent.say("And one more")
    relay.restore()
    await wait_row(page, "And one more", SALES)
    await page.wait_for(f"document.querySelector({js(SALES + ' .sbw-status')}).textContent"
                        " === 'You are chatting with Agent 1.'")
    texts = [r for r in await rows(page) if "Sent while" in r or "one more" in r
             or "First answer" in r]
    assert len(texts) == 3, texts

    # The customer ends the chat from the widget; the agent side sees it end.
    await page.click(f"{SALES} .sbw-actions button")
    await wait_row(page, "You ended the chat.")
    assert await page.evaluate(f"document.querySelector({js(SALES + ' .sbw-compose textarea')})"
                               ".disabled") is True


async def test_embedded_on_another_website(tmp_path: Path, browser: Browser) -> None:
    """A shop's own page embeds the script from Switchboard's origin: the widget talks to the
    origin it was loaded from, through CORS, because the service allows the shop's origin."""
    shop = web.Application()
    shop_server = TestServer(shop, host="127.0.0.1")
    switchboard_origin: list[str] = []

    async def home(request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text=(
            "<!doctype html><html lang=en><title>Shop</title><h1>Shop</h1><p>Questions? "
            f"<script src=\"{switchboard_origin[0]}/interact/widget.js\" data-service=sales>"
            "</script></p>"))

    shop.router.add_get("/", home)
    await shop_server.start_server()
    try:
        shop_origin = f"http://127.0.0.1:{shop_server.port}"
        services = catalog({"id": "sales", "name": "Sales",
                            "interact": {"allowed_origins": [shop_origin]}})
        async with running_world(services, tmp_path) as world:
            switchboard_origin.append(f"http://127.0.0.1:{world.server.port}")
            page = await browser.new_page()
            await page.goto(f"{shop_origin}/")
            await page.wait_for("document.querySelector('p .sbw-launcher')"
                                " && document.querySelector('p .sbw-launcher').textContent"
                                " === 'Chat with us'")
            await page.click(".sbw-launcher")
            await page.type("Ann")
            await page.press("Enter")  # Enter in a field submits the form
            await page.wait_for("!document.querySelector('.sbw-chat').hidden")
            await page.wait_for("document.querySelector('.sbw-status').textContent"
                                " === 'You are number 1 in the queue'")
            await say_in_widget(page, "Hi from the shop", widget=".sbw-root")
            await wait_row(page, "Hi from the shop", ".sbw-root")
            assert page.errors == [] and page.dialogs == []
            await page.close()  # before the app stops: it waits for open WebSockets
    finally:
        await shop_server.close()
