"""The Interact API over real HTTP: shapes, refusals, WebSocket events, resume, load."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import INTERACT
from bot.domain.message import LinePace
from bot.services.context import Ctx
from tests.builders import catalog
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually
from tests.support.world import World, running_world

API = "/api/interact/v1"
SITE = "https://www.contoso.example"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    services = catalog(
        {"id": "sales", "name": "Sales", "interact": {"allowed_origins": [SITE]},
         "distribution": {"max_queue_time": "5m"},
         "members": [f"a{i}@example.com" for i in range(1, 101)]},
        {"id": "support", "name": "Support", "modalities": ["email"]},
    )
    async with running_world(services, tmp_path,
                             app_options={"connector_time_scale": 0.01}) as running:
        yield running


def url(world: World, path: str) -> str:
    return str(world.server.make_url(path))


async def open_chat(world: World, body: dict[str, Any] | None = None,
                    headers: dict[str, str] | None = None) -> dict[str, Any]:
    async with world.client.post(url(world, f"{API}/chats"), headers=headers,
                                 json=body or {"service": "sales", "text": "Hi"}) as response:
        assert response.status == 201, await response.text()
        return dict(await response.json())


async def accept_for(agent: TeamsAgent) -> str:
    """Accept the invitation and wait for the chatroom header (local mode: personal chat)."""
    [invitation] = await eventually(lambda: agent.buttons("accept"), timeout=30)
    session_id, _ = await agent.accept(invitation)
    await eventually(lambda: [c for c in agent.cards() if " ¦ " in json.dumps(
        c["card"], ensure_ascii=False)], timeout=30)
    return session_id


async def read_events(ws: aiohttp.ClientWebSocketResponse, until: str,
                      count: int = 1) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    seen = 0
    async with asyncio.timeout(10):
        while seen < count:
            event = await ws.receive_json()
            events.append(event)
            if event["type"] == until:
                seen += 1
    return events


async def test_create_shapes_and_visitor_numbers(world: World) -> None:
    named = await open_chat(world, {"service": "sales", "text": "Hello",
                                    "customer": {"name": "Jane Doe", "email": "j@x.example"}})
    assert set(named) == {"chat_id", "token", "visitor", "position"}
    assert named["visitor"] == "Jane Doe" and named["position"] == 1
    world.clock.advance(1)
    first = await open_chat(world)
    world.clock.advance(1)
    second = await open_chat(world)
    assert (first["visitor"], second["visitor"]) == ("Visitor 1", "Visitor 2")
    assert second["position"] == 3


async def test_refusals_are_clear_4xx(world: World) -> None:
    chat = await open_chat(world)
    chat_url = url(world, f"{API}/chats/{chat['chat_id']}")

    async def status(method: str, target: str, **kwargs: Any) -> tuple[int, Any]:
        async with world.client.request(method, target, **kwargs) as response:
            body = await response.json() if response.content_type == "application/json" \
                else await response.text()
            return response.status, body

    code, body = await status("POST", f"{chat_url}/messages", json={"text": "x"})
    assert code == 401 and "token" in body["error"]
    code, _ = await status("POST", f"{chat_url}/messages", json={"text": "x"},
                           headers={"Authorization": "Bearer wrong"})
    assert code == 401
    auth = {"Authorization": f"Bearer {chat['token']}"}
    code, body = await status("POST", f"{chat_url}/messages", json={"text": "é" * 3000},
                              headers=auth)
    assert code == 413 and "4 KB" in body["error"]
    code, body = await status("POST", url(world, f"{API}/chats"), json={"service": "nope"})
    assert code == 404 and "nope" in body["error"]
    code, body = await status("POST", url(world, f"{API}/chats"), json={"service": "support"})
    assert code == 422
    code, body = await status("POST", url(world, f"{API}/chats"), data=b"{not json",
                              headers={"Content-Type": "application/json"})
    assert code == 400 and "JSON" in body["error"]
    code, body = await status("POST", url(world, f"{API}/chats"), json={"service": "sales"},
                              headers={"Origin": "https://evil.example"})
    assert code == 403
    code, _ = await status("POST", url(world, f"{API}/chats"), json={"service": "sales"},
                           headers={"Origin": SITE})
    assert code == 201
    code, _ = await status("GET", url(world, f"{API}/chats/{chat['chat_id']}/ws?token=wrong"))
    assert code == 401
    # Nothing that was accepted before was lost: the chat still has its first message.
    code, _ = await status("POST", f"{chat_url}/messages", json={"text": "still here"},
                           headers=auth)
    assert code == 202


async def test_rate_limits_answer_429(world: World) -> None:
    world.app[INTERACT].line_pace = LinePace(3, timedelta(seconds=10))
    chat = await open_chat(world)
    auth = {"Authorization": f"Bearer {chat['token']}"}
    statuses = []
    for n in range(5):
        async with world.client.post(url(world, f"{API}/chats/{chat['chat_id']}/messages"),
                                     json={"text": f"m{n}"}, headers=auth) as response:
            statuses.append(response.status)
            if response.status == 429:
                assert int(response.headers["Retry-After"]) == 10  # the first line's window
    assert statuses == [202, 202, 429, 429, 429]  # the chat's first line counts too
    world.clock.advance(9.5)
    async with world.client.post(url(world, f"{API}/chats/{chat['chat_id']}/messages"),
                                 json={"text": "m5"}, headers=auth) as response:
        assert response.status == 429 and response.headers["Retry-After"] == "1"
    world.clock.advance(0.5)  # ten seconds after the first three lines
    async with world.client.post(url(world, f"{API}/chats/{chat['chat_id']}/messages"),
                                 json={"text": "m6"}, headers=auth) as response:
        assert response.status == 202


async def test_websocket_events_and_resume(world: World) -> None:
    agent = world.agent(1)
    await agent.register()
    chat = await open_chat(world, {"service": "sales", "text": "Hello",
                                   "customer": {"name": "Jane"}})
    ws_url = url(world, f"{API}/chats/{chat['chat_id']}/ws?token={chat['token']}")
    async with world.client.ws_connect(ws_url) as ws:
        first = await read_events(ws, "message")
        assert [e["type"] for e in first][:1] == ["queued"]
        assert first[-1]["text"] == "Hello" and first[-1]["from"] == "customer"
        await accept_for(agent)
        accepted = await read_events(ws, "accepted")
        assert accepted[-1]["agent"] == "Agent 1"
        await agent.say("Hi Jane, how can I help?")
        reply = await read_events(ws, "message")
        assert reply[-1]["from"] == "agent" and reply[-1]["text"] == "Hi Jane, how can I help?"
        last_seen = reply[-1]["seq"]
    # While disconnected, the agent writes twice; a reconnect with `after` resumes exactly.
    await agent.say("Are you still there?")
    await agent.say("I sent you the quote.")
    async with world.client.ws_connect(f"{ws_url}&after={last_seen}") as ws:
        resumed = await read_events(ws, "message", count=2)
        texts = [e["text"] for e in resumed if e["type"] == "message"]
        assert texts == ["Are you still there?", "I sent you the quote."]
        assert all(e["seq"] > last_seen for e in resumed)
        await agent.say("end")
        ended = await read_events(ws, "ended")
        assert ended[-1]["by"] == "agent"


async def test_customer_leaving_before_accept_cancels(world: World) -> None:
    agent = world.agent(1)
    await agent.register()
    chat = await open_chat(world)
    [invitation] = await eventually(lambda: agent.buttons("accept"))
    async with world.client.post(
            url(world, f"{API}/chats/{chat['chat_id']}/end"),
            headers={"Authorization": f"Bearer {chat['token']}"}) as response:
        assert response.status == 200
    await eventually(lambda: "cancelled" in str(world.connector.latest.get(invitation["id"]))
                     .lower())


async def test_idle_customer_times_out(world: World) -> None:
    agent = world.agent(1)
    await agent.register()
    chat = await open_chat(world)
    await accept_for(agent)  # connected, so the 5-minute queue limit no longer applies
    ws_url = url(world, f"{API}/chats/{chat['chat_id']}/ws?token={chat['token']}")
    await world.advance(599)
    assert (await world.engine.run(_state, chat["chat_id"])) == "connected"
    await world.advance(1)  # default idle timeout: 10 minutes
    async with world.client.ws_connect(ws_url) as ws:
        ended = await read_events(ws, "ended")
    assert ended[-1]["by"] == "system"


async def test_max_queue_time_ends_with_the_offline_message(world: World) -> None:
    chat = await open_chat(world)
    ws_url = url(world, f"{API}/chats/{chat['chat_id']}/ws?token={chat['token']}")
    async with world.client.ws_connect(ws_url) as ws:
        await read_events(ws, "message")
        await world.advance(300)
        expired = await read_events(ws, "expired")
    assert "no one could take your request" in expired[-1]["message"]


async def test_hundred_chats_twenty_messages_each_way(world: World) -> None:
    # The fake clock stands still: each chat's opening line and its twenty come at one moment,
    # one more than the flood guard (20 in 10 s, test_rate_limits_answer_429) takes.
    world.app[INTERACT].line_pace = LinePace(21, timedelta(seconds=10))
    agents = [world.agent(n) for n in range(1, 101)]
    await asyncio.gather(*(a.register() for a in agents))
    chats = [await open_chat(world, {"service": "sales", "text": "start",
                                     "customer": {"name": f"Customer {n}"}})
             for n in range(100)]
    # Every agent accepts the one chat offered to them.
    sessions = await asyncio.gather(*(accept_for(a) for a in agents))
    assert len(set(sessions)) == 100
    owner = {}
    for agent in agents:
        header = next(json.dumps(c["card"], ensure_ascii=False) for c in agent.cards()
                      if " ¦ " in json.dumps(c["card"], ensure_ascii=False))
        name = next(f"Customer {n}" for n in range(100) if f"Sales ¦ Customer {n}\"" in header)
        owner[name] = agent

    async def customer(n: int) -> list[str]:
        chat = chats[n]
        auth = {"Authorization": f"Bearer {chat['token']}"}
        ws_url = url(world, f"{API}/chats/{chat['chat_id']}/ws?token={chat['token']}")
        async with world.client.ws_connect(ws_url) as ws:
            for m in range(20):
                async with world.client.post(
                        url(world, f"{API}/chats/{chat['chat_id']}/messages"),
                        json={"text": f"c{n}-{m}"}, headers=auth) as response:
                    assert response.status == 202
                    await asyncio.sleep(0.05)  # keep under the per-chat flood limit
            received: list[str] = []
            async with asyncio.timeout(60):
                while len(received) < 20:
                    event = await ws.receive_json()
                    if event["type"] == "message" and event["from"] == "agent":
                        received.append(event["text"])
            return received

    async def agent_side(n: int) -> None:
        agent = owner[f"Customer {n}"]
        for m in range(20):
            await agent.say(f"a{n}-{m}")

    results = await asyncio.gather(*(customer(n) for n in range(100)),
                                   *(agent_side(n) for n in range(100)))
    for n in range(100):
        assert results[n] == [f"a{n}-{m}" for m in range(20)], n
        relayed = [t for t in owner[f"Customer {n}"].texts() if t.startswith(f"Customer {n}: ")]
        await eventually(lambda n=n: len([t for t in owner[f"Customer {n}"].texts()
                                          if t.startswith(f"Customer {n}: c")]) == 20,
                         timeout=60)
        relayed = [t for t in owner[f"Customer {n}"].texts() if t.startswith(f"Customer {n}: c")]
        assert relayed == [f"Customer {n}: c{n}-{m}" for m in range(20)], n


async def _state(ctx: Ctx, task_id: str) -> str:
    return (await ctx.task(task_id)).state.value
