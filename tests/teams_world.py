"""A running Switchboard on a real socket, a Bot Connector stand-in, and agents to drive it."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import ENGINE, create_app
from bot.config import Settings
from bot.domain.service import Catalog
from bot.services.engine import Engine
from tests import teams_activities as act
from tests.fakes import FakeClock
from tests.standins.connector import ConnectorStandin


async def eventually(check: Callable[[], Any], *, timeout: float = 5.0) -> Any:
    """Poll until `check()` (plain or async) returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)


def find_action(node: Any, verb: str) -> dict[str, Any] | None:
    """The first Action.Execute with this verb anywhere in a card."""
    if isinstance(node, dict):
        if node.get("type") == "Action.Execute" and node.get("verb") == verb:
            return node
        children: Any = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = find_action(child, verb)
        if found is not None:
            return found
    return None


@dataclass
class Agent:
    world: World
    n: int

    @property
    def user_id(self) -> str:
        return f"29:agent-{self.n}"

    @property
    def conversation_id(self) -> str:
        return f"a:personal-{self.n}"

    @property
    def name(self) -> str:
        return f"Agent {self.n}"

    @property
    def aad(self) -> str:
        return f"00000000-0000-0000-0000-0000000000{self.n:02d}"

    def activities(self) -> list[dict[str, Any]]:
        return self.world.connector.activities.get(self.conversation_id, [])

    def cards(self) -> list[dict[str, Any]]:
        """The latest version of every card posted to this agent, in posting order."""
        found = []
        for activity in self.activities():
            for attachment in activity.get("attachments") or []:
                latest = self.world.connector.latest.get(activity["id"], activity)
                found.append({"id": activity["id"],
                              "card": (latest.get("attachments") or [attachment])[0]["content"]})
        return found

    def buttons(self, verb: str) -> list[dict[str, Any]]:
        """Cards (latest versions) that carry an Action.Execute with this verb."""
        return [c for c in self.cards() if find_action(c["card"], verb) is not None]

    def texts(self) -> list[str]:
        return [a["text"] for a in self.activities() if a.get("text")]

    async def post(self, activity: dict[str, Any]) -> tuple[int, Any]:
        return await self.world.post(activity)

    async def install(self) -> None:
        await self.post(act.installation(self.world.service_url, self.conversation_id,
                                         self.user_id, self.name, self.aad))

    async def say(self, text: str) -> tuple[int, Any]:
        return await self.post(act.message(self.world.service_url, self.conversation_id,
                                           self.user_id, self.name, text, aad=self.aad))

    async def say_in(self, conversation_id: str, text: str) -> tuple[int, Any]:
        return await self.post(act.message(self.world.service_url, conversation_id,
                                           self.user_id, self.name, text, group=True,
                                           aad=self.aad))

    async def click(self, verb: str, data: dict[str, Any],
                    reply_to: str | None = None) -> dict[str, Any]:
        status, body = await self.post(act.card_action(
            self.world.service_url, self.conversation_id, self.user_id, self.name, verb, data,
            reply_to=reply_to))
        assert status == 200, (status, body)
        assert body["statusCode"] == 200 and body["type"].endswith("card.adaptive"), body
        return dict(body["value"])

    async def register(self) -> None:
        await self.install()
        await self.say("register")


@dataclass
class World:
    server: TestServer
    client: aiohttp.ClientSession
    connector: ConnectorStandin
    app: web.Application
    clock: FakeClock

    @property
    def engine(self) -> Engine:
        return self.app[ENGINE]

    @property
    def service_url(self) -> str:
        return self.connector.service_url

    def agent(self, n: int) -> Agent:
        agent = Agent(self, n)
        self.connector.add_member(agent.user_id, name=agent.name,
                                  user_principal_name=f"a{n}@example.com",
                                  aad_object_id=agent.aad)
        return agent

    async def post(self, activity: dict[str, Any]) -> tuple[int, Any]:
        async with self.client.post(self.server.make_url("/api/messages"),
                                    json=activity) as response:
            body = await response.json() if response.content_type == "application/json" \
                else await response.text()
            return response.status, body

    async def advance(self, seconds: float) -> None:
        """Move the fake clock and fire what became due, as the scheduler would."""
        self.clock.advance(seconds)
        while await self.engine.jobs.fire_due():
            pass


@asynccontextmanager
async def running_world(catalog: Catalog, tmp_path: Path, *,
                        app_options: dict[str, Any] | None = None,
                        connector_options: dict[str, Any] | None = None,
                        **settings: Any) -> AsyncIterator[World]:
    clock = FakeClock()
    async with ConnectorStandin(**(connector_options or {})) as connector:
        config = replace(Settings(catalog=catalog, db_path=str(tmp_path / "sb.db")), **settings)
        app = create_app(config, clock=clock, **(app_options or {}))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            # No pool limit: load tests hold 100+ WebSockets open on this same session.
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
                yield World(server, client, connector, app, clock)
        finally:
            await server.close()
