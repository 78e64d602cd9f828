"""Three `python -m bot` instances on one SQLite file keep the Teams limits as one (issue #18)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.resilience.harness import (
    API,
    Customer,
    Launch,
    ServerProcess,
    db_of,
    make_agent,
    make_customer,
)
from tests.standins.connector import ConnectorStandin
from tests.support.http import post_json
from tests.support.waiting import eventually

CHATS = 30
LINES = 10


async def three_on_one_file(launch: Launch, tmp_path: Path) -> list[ServerProcess]:
    """Three `python -m bot` on one SQLite file, each ready."""
    servers = []
    for name in ("a", "b", "c"):
        server = launch(name=name, env={"SWITCHBOARD_DB": str(tmp_path / "fleet.db")})
        await server.ready()
        servers.append(server)
    return servers


async def post_busy_retried(client: aiohttp.ClientSession, url: str, body: dict[str, Any],
                            headers: dict[str, str] | None = None) -> int:
    """POST; a 503 ("busy, please retry": three processes on one file) is tried again."""
    for _ in range(20):
        status, _ = await post_json(client, url, body, headers=headers)
        if status != 503:
            return status
        await asyncio.sleep(0.05)
    return status


async def test_300_relayed_lines_from_three_instances_arrive_in_order_without_429(
        launch: Launch, client: aiohttp.ClientSession, tmp_path: Path) -> None:
    shared_db = tmp_path / "fleet.db"
    async with ConnectorStandin(enforce_limits=True) as connector:
        servers = []
        for name in ("a", "b", "c"):
            server = launch(name=name, env={"SWITCHBOARD_DB": str(shared_db)},
                            ring_timeout="120s", members=CHATS)
            await server.ready()
            servers.append(server)
        db = db_of(servers[0])
        await eventually(lambda: len(db.rows("SELECT id FROM fleet_instances")) == 3,
                         timeout=10)

        agents = [make_agent(n, servers[n % 3], connector, client) for n in range(1, CHATS + 1)]
        await asyncio.gather(*(agent.register() for agent in agents))
        customers = [make_customer(servers[i % 3], client) for i in range(CHATS)]
        for i, customer in enumerate(customers):
            await customer.open(f"Hello {i}", name=f"Cust{i}")

        def offered() -> list[dict[str, Any]]:
            found = [s for s in db.sessions() if s["card_id"] and s["phase"] == "ringing"]
            return found if len(found) == CHATS else []

        by_agent = {s["agent_id"]: s for s in await eventually(offered, timeout=60)}
        await asyncio.gather(*(
            agent.click("accept", {"session_id": by_agent[agent.user_id]["id"]},
                        reply_to=by_agent[agent.user_id]["card_id"]) for agent in agents))
        await eventually(lambda: sum(1 for s in db.sessions()
                                     if s["data"].get("header_posted")) == CHATS, timeout=60)
        throttled_before = connector.throttled
        print(f"429s while setting up: {throttled_before}")

        # The burst: every customer writes 10 lines, each line through another instance.
        async def talk(i: int, customer: Customer) -> None:
            for j in range(LINES):
                base = servers[(i + j) % 3].url
                status = await post_busy_retried(
                    client, f"{base}{API}/chats/{customer.chat_id}/messages",
                    {"text": f"line {j:02d}"}, headers=customer.auth)
                assert status == 202, status

        started = time.monotonic()
        await asyncio.gather(*(talk(i, c) for i, c in enumerate(customers)))
        chat_of = {s["agent_id"]: s["task_id"] for s in db.sessions()}
        label = {c.chat_id: f"Cust{i}" for i, c in enumerate(customers)}

        def relayed(agent_conv: str) -> list[str]:
            return [t for t in connector.texts(agent_conv) if t and ": line " in t]

        await eventually(lambda: all(len(relayed(a.conversation_id)) >= LINES for a in agents),
                         timeout=120)
        took = time.monotonic() - started
        for agent in agents:
            name = label[chat_of[agent.user_id]]
            assert relayed(agent.conversation_id) == [f"{name}: line {j:02d}"
                                                      for j in range(LINES)]
        assert connector.throttled == throttled_before == 0, dict(connector.throttled_by)
        # The instances shared the conversations' windows through the store.
        assert len(db.rows("SELECT conversation FROM fleet_sendlog")) >= CHATS
        print(f"300 lines relayed in {took:.1f}s by three instances, 0 x 429")


async def test_the_chats_one_address_may_open_a_minute_hold_for_the_fleet(
        launch: Launch, client: aiohttp.ClientSession, tmp_path: Path) -> None:
    """The Interact API's flood guard (120 new chats a minute from one address) is the fleet's:
    a load balancer spreading one address over three instances must not triple it."""
    servers = await three_on_one_file(launch, tmp_path)
    db = db_of(servers[0])
    await eventually(lambda: len(db.rows("SELECT id FROM fleet_instances")) == 3, timeout=10)
    await asyncio.sleep(2 * 2.0 + 0.5)  # two heartbeats: every instance has counted the others

    statuses: list[int] = []
    for n in range(200):
        statuses.append(await post_busy_retried(client, f"{servers[n % 3].url}{API}/chats",
                                                {"service": "sales", "text": f"hello {n}"}))
    assert set(statuses) == {201, 429}
    assert statuses.count(201) == 120


async def test_the_lines_one_chat_may_send_in_ten_seconds_hold_for_the_fleet(
        launch: Launch, client: aiohttp.ClientSession, tmp_path: Path) -> None:
    """The Interact API's guard on one chat (20 customer lines in 10 s) counts the chat's lines
    in the store: a widget whose posts a load balancer spreads over three instances gets 20,
    not 60, and one that sends every line to one instance gets 20 too."""
    servers = await three_on_one_file(launch, tmp_path)
    spread, pinned = make_customer(servers[0], client), make_customer(servers[1], client)
    await spread.open("", name="Spread")  # no first line: all 20 are the test's
    await pinned.open("", name="Pinned")

    async def send(customer: Customer, lines: int, bases: list[str]) -> list[int]:
        return [await post_busy_retried(
            client, f"{bases[n % len(bases)]}{API}/chats/{customer.chat_id}/messages",
            {"text": f"line {n}"}, headers=customer.auth) for n in range(lines)]

    started = time.monotonic()
    spread_statuses = await send(spread, 45, [s.url for s in servers])
    pinned_statuses = await send(pinned, 25, [servers[1].url])
    assert time.monotonic() - started < 10  # all inside one window
    assert spread_statuses == [202] * 20 + [429] * 25
    assert pinned_statuses == [202] * 20 + [429] * 5
