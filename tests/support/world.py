"""A running Switchboard on a real socket in this process, a Bot Connector stand-in, and
agents (tests/support/teams.py) to drive it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import ENGINE, create_app
from bot.config import Settings
from bot.domain.service import Catalog
from bot.domain.timers import CARD_SETTLE
from bot.services.engine import Engine
from tests.fakes import FakeClock
from tests.standins.connector import ConnectorStandin
from tests.standins.fixtures import LIMITS_TIME_SCALE
from tests.support.http import post_json
from tests.support.teams import TeamsAgent


@dataclass
class World:
    server: TestServer
    client: aiohttp.ClientSession
    connector: ConnectorStandin
    app: web.Application
    clock: FakeClock
    agents: list[TeamsAgent] = field(default_factory=list)  # every agent made here

    @property
    def engine(self) -> Engine:
        return self.app[ENGINE]

    @property
    def service_url(self) -> str:
        return self.connector.service_url

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def agent(self, n: int) -> TeamsAgent:
        agent = TeamsAgent.enrolled(n, self.connector, self.client, self.base_url)
        self.agents.append(agent)
        return agent

    async def post(self, activity: dict[str, Any]) -> tuple[int, Any]:
        return await post_json(self.client, self.server.make_url("/api/messages"), activity,
                               timeout=60)

    async def advance(self, seconds: float, *, jobs_first: bool = True) -> None:
        """Move the fake clock and fire what became due, as the scheduler would. Jobs under
        way finish first (`jobs_first`): an offer rings from when its card job recorded the
        delivery, so a clock moved before that would start the ring after the move."""
        if jobs_first:
            await self.engine.jobs.idle()
        self.clock.advance(seconds)
        while await self.engine.jobs.fire_due():
            pass

    async def settle_cards(self) -> None:
        """Move the clock past CARD_SETTLE (and its rounding up to a whole second): the
        updates of the cards agents clicked go out, as they would two or three seconds on."""
        await self.advance((CARD_SETTLE + timedelta(seconds=1)).total_seconds())
        await self.settle()

    async def settle(self) -> None:
        """Fire what is due now and wait until the engine is idle: after this, nothing more
        happens until the clock moves or someone acts."""
        await self.advance(0)
        await self.engine.jobs.idle()
        await self.advance(0)


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


Serve = Callable[..., AbstractAsyncContextManager[World]]
"""The `serve` fixture: `async with serve(services, db_path, connector=..., clock=...)`."""


@asynccontextmanager
async def serving(services: Catalog, db_path: Path, *,
                  connector: ConnectorStandin | None = None, clock: FakeClock | None = None,
                  connector_time_scale: float = LIMITS_TIME_SCALE,
                  on_stop: Callable[[World], None] | None = None) -> AsyncIterator[World]:
    """Like `running_world`, but the connector and clock can outlive the app (a restart on
    the same database file), outbound pacing runs on a scaled clock (a busy personal chat is
    not paced in real seconds; tests/integration/test_outbound_limits.py covers the limits),
    and `on_stop` sees the world before the app stops."""
    async with AsyncExitStack() as stack:
        if connector is None:
            connector = await stack.enter_async_context(ConnectorStandin())
        clock = clock or FakeClock()
        app = create_app(Settings(catalog=services, db_path=str(db_path)), clock=clock,
                         connector_time_scale=connector_time_scale)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        stack.push_async_callback(_shut_down, server)
        client = await stack.enter_async_context(aiohttp.ClientSession())
        world = World(server, client, connector, app, clock)
        try:
            yield world
        finally:
            if on_stop is not None:
                on_stop(world)
            with contextlib.suppress(TimeoutError):  # the app stops with its scheduler at rest
                await asyncio.wait_for(world.engine.jobs.idle(), 10)


async def _shut_down(server: TestServer) -> None:
    try:
        await asyncio.wait_for(server.close(), 10)
    except TimeoutError:
        raise AssertionError("the app did not shut down within 10 s") from None
