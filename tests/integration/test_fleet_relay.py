"""Two real server processes on one store: the widget on A, the agent's activities to B.

A load balancer sends a customer's widget to one instance and Teams' activities to whichever
instance it picks; what one instance commits must reach the WebSocket held by the other
through the store's change feed (SQLite: `changes` rows behind `PRAGMA data_version`; Cosmos
DB: the `messages` container's change feed), not at the 15 s safety-net resync.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.contract.conftest import cosmos_server
from tests.cosmos_server import CosmosServer
from tests.resilience.harness import (
    API,
    ServerProcess,
    card_stage,
    free_port,
    make_agent,
    make_customer,
    server_env,
    services_file,
)
from tests.standins.connector import ConnectorStandin
from tests.support.cards import find_action
from tests.support.waiting import eventually

__all__ = ["cosmos_server"]

MESSAGES = 20
WITHIN = 1.0  # seconds each message may take, either way
CUSTOMER_PACE = 0.5  # seconds between the customer's lines


@pytest.fixture(params=["sqlite", "cosmos"])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        return {"SWITCHBOARD_DB": str(tmp_path / "shared.db")}
    server: CosmosServer = request.getfixturevalue("cosmos_server")
    return {"SWITCHBOARD_STORE": "cosmos", "COSMOS_ENDPOINT": server.endpoint,
            "COSMOS_KEY": server.key, "COSMOS_DATABASE": f"fleet-{uuid.uuid4().hex[:10]}"}


@pytest.fixture
async def fleet(tmp_path: Path, store_env: dict[str, str],
                ) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    services = services_file(tmp_path, ring_timeout="60s")
    servers = []
    for name in ("a", "b"):
        workdir = tmp_path / name
        workdir.mkdir()
        env = server_env(db=tmp_path / "shared.db", services=services, port=free_port(),
                         **store_env)
        servers.append(ServerProcess(workdir, env, name=name))
    try:
        for server in servers:  # one after the other: both would create the Cosmos containers
            server.start()
            await server.ready()
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


async def test_chat_across_two_instances_arrives_in_order_within_a_second(
        fleet: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = fleet
    async with ConnectorStandin() as connector, aiohttp.ClientSession() as client:
        agent = make_agent(1, b, connector, client)  # Teams delivers the agent's activities to B
        await agent.register()
        jane = make_customer(a, client)  # the widget talks to A
        await jane.open("Hello", name="Jane Doe")
        [(invitation_id, invitation)] = await eventually(lambda: agent.cards_with("accept"),
                                                         timeout=15)
        action = find_action(invitation, "accept")
        assert action is not None
        accepted = await agent.click("accept", action["data"], reply_to=invitation_id)
        assert card_stage(accepted) == "accepted"
        header = "Sales ¦ Jane Doe"
        await eventually(lambda: any(header in str(a.get("attachments"))
                                     for a in agent.activities()), timeout=15)

        ws_url = f"{a.url}{API}/chats/{jane.chat_id}/ws?token={jane.token}"
        async with client.ws_connect(ws_url) as ws:
            seen = _Widget(ws)
            reader = asyncio.create_task(seen.read())
            await eventually(lambda: seen.kinds() >= {"accepted"}, timeout=15)

            # Agent -> widget: each line posted to B shows on A's WebSocket within a second.
            for n in range(MESSAGES):
                text = f"agent line {n}"
                sent = time.monotonic()
                status, _ = await agent.say(text)
                assert status == 200
                arrived = await _arrival(lambda t=text: seen.arrived.get(t))
                assert arrived - sent < WITHIN, f"{text!r} took {arrived - sent:.2f}s"
            assert seen.agent_texts() == [f"agent line {n}" for n in range(MESSAGES)]

            # Customer -> chatroom: each line posted to A reaches the agent's chat in a second.
            for n in range(MESSAGES):
                text = f"customer line {n}"
                sent = time.monotonic()
                await jane.say(text)
                line = f"Jane Doe: {text}"
                await eventually(lambda line=line: line in agent.texts(), timeout=20)
                took = time.monotonic() - sent
                assert took < WITHIN, f"{text!r} took {took:.2f}s"
                # A person's pace: faster, and Teams' own limits (8 sends per 2 s into one
                # conversation) would hold lines back whatever the instances do.
                await asyncio.sleep(max(0.0, CUSTOMER_PACE - took))
            relayed = [t for t in agent.texts() if t.startswith("Jane Doe: customer line")]
            assert relayed == [f"Jane Doe: customer line {n}" for n in range(MESSAGES)]
            reader.cancel()


class _Widget:
    """What the customer's WebSocket received, with arrival times."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.arrived: dict[str, float] = {}

    async def read(self) -> None:
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            event = message.json()
            self.events.append(event)
            if event.get("type") == "message" and event.get("from") == "agent":
                self.arrived.setdefault(event["text"], time.monotonic())

    def kinds(self) -> set[str]:
        return {str(e.get("type")) for e in self.events}

    def agent_texts(self) -> list[str]:
        return [e["text"] for e in self.events
                if e.get("type") == "message" and e.get("from") == "agent"]


async def _arrival(look: Callable[[], float | None], timeout: float = 20.0) -> float:
    """When it arrived (waiting past the limit, so a slow arrival fails with its time)."""
    deadline = time.monotonic() + timeout
    while (found := look()) is None:
        assert time.monotonic() < deadline, "never arrived"
        await asyncio.sleep(0.005)
    return found
