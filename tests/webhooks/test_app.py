"""Through the whole app (create_app, its scheduler, real HTTP): web requests go out in order,
survive an app restart with the receiver down, and the logs carry no customer data."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bot.app import create_app
from bot.config import Settings
from bot.domain.service import Catalog
from tests.builders import catalog
from tests.fakes import FakeClock
from tests.standins.connector import ConnectorStandin
from tests.support.logs import CapturedLogs
from tests.support.waiting import eventually
from tests.support.world import World
from tests.webhooks.harness import SECRET
from tests.webhooks.receiver import Receiver

API = "/api/interact/v1"
NAME, EMAIL, PHONE = "Zelda Quixote", "zelda.q@example.org", "+41 79 555 01 23"
SECRETS = [NAME, EMAIL, PHONE, "Zelda%20Quixote", "Zelda+Quixote", "zelda.q%40example.org",
           "Quixote"]


@asynccontextmanager
async def app_life(services: Catalog, db: Path,
                   connector: ConnectorStandin) -> AsyncIterator[World]:
    """One life of the app on `db`; the Teams stand-in outlives it, as Teams does a restart."""
    clock = FakeClock()
    app = create_app(Settings(catalog=services, db_path=str(db)), clock=clock)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as client:
            yield World(server, client, connector, app, clock)
    finally:
        await server.close()


def services(base: str) -> Catalog:
    return catalog({"id": "sales", "name": "Sales", "web_request": [
        {"on": "ringing", "method": "GET",
         "url": base + "/ring/{task.id}?name={customer.name}&email={customer.email}"},
        {"on": "accepted", "url": base + "/signed/accepted/{task.id}", "secret": SECRET,
         "headers": {"X-Phone": "{customer.phone}"},
         "body": '{"name": "{customer.name}", "email": "{customer.email}"}'},
        {"on": "terminated", "method": "PATCH", "url": base + "/terminated/{task.id}",
         "body": '{"result": "{session.result}"}'},
        {"on": "concluded", "url": base + "/signed/concluded/{task.id}", "secret": SECRET,
         "body": '{"tags": "{session.tags}", "name": "{customer.name}"}'},
    ]})


async def handle_one_task(world: World) -> None:
    agent = world.agent(1)
    await agent.register()
    async with world.client.post(world.server.make_url(f"{API}/chats"), json={
            "service": "sales", "text": "Hello",
            "customer": {"name": NAME, "email": EMAIL, "phone": PHONE}}) as response:
        assert response.status in (200, 201), await response.text()
    [invitation] = await eventually(lambda: agent.buttons("accept"))
    session_id, _ = await agent.accept(invitation)
    await agent.click("terminate", {"session_id": session_id})
    await agent.click("save_wrapup", {"session_id": session_id, "tags": "vip"})


async def test_requests_survive_an_app_restart_and_logs_hold_no_customer_data(
        tmp_path: Path, captured: CapturedLogs) -> None:
    receiver = Receiver(secrets={"/signed/": SECRET})
    await receiver.start()
    await receiver.stop()  # known port, nobody listening: connections are refused
    catalog_ = services(receiver.base)
    db = tmp_path / "sb.db"
    try:
        async with ConnectorStandin() as connector:
            async with app_life(catalog_, db, connector) as world:
                receiver.now = lambda: world.clock.now().timestamp()
                await handle_one_task(world)
                # The scheduler tried the first request; the rest wait behind it.
                await eventually(lambda: captured.entries("web request got no answer"))
            await receiver.start()  # the app stopped; the receiver comes back on its port
            async with app_life(catalog_, db, connector) as world:  # the app starts again
                receiver.now = lambda: world.clock.now().timestamp()
                await world.advance(15)  # past the first backoff (at most 10 s)
                await eventually(lambda: len(receiver.accepted) == 4)
    finally:
        await receiver.stop()

    assert [h.event for h in receiver.accepted] == ["ringing", "accepted", "terminated",
                                                    "concluded"]
    assert set(receiver.answered.values()) == {1}
    assert [h.signed_ok for h in receiver.accepted] == [None, True, None, True]
    assert receiver.accepted[0].query == {"name": [NAME], "email": [EMAIL]}
    assert receiver.accepted[1].headers["X-Phone"] == PHONE
    # Logs: status and timing, the target's origin, never a URL's path or query, headers or body.
    sent = captured.entries("web request sent")
    assert len(sent) == 4
    assert {(entry["status"], entry["target"]) for entry in sent} == {(200, receiver.base)}
    assert all(isinstance(entry["ms"], int) for entry in sent)
    text = "\n".join(captured.lines)
    assert any(json.loads(line)["level"] == "DEBUG" for line in captured.lines)
    for secret in SECRETS:
        assert secret not in text, f"customer data in the logs: {secret!r}"
