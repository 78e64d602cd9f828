"""One whole chat through the running app (register, invitation, decline, RONA, accept, relay
both ways, terminate, wrap-up), every request made on a session that counts them."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp

from bot.logs import JsonFormatter
from tests.support.cards import find_action
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually
from tests.support.world import World

API = "/api/interact/v1"
CUSTOMER = {"name": "Zelda Quixote", "email": "zelda.q@example.org", "phone": "+41 79 555 01 23"}
WORDS = ["my account number is 4711", "please call me back", "Sure thing, Zelda"]
SECRETS = [*CUSTOMER.values(), *WORDS]


class Captured(logging.Handler):
    """Every record formatted as production does (JSON lines), kept as parsed objects."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@dataclass
class Counted:
    """The requests a client made: (method, path) of each, in order."""

    requests: list[tuple[str, str]] = field(default_factory=list)

    def tracing(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def start(_session: aiohttp.ClientSession, _ctx: SimpleNamespace,
                        params: aiohttp.TraceRequestStartParams) -> None:
            self.requests.append((params.method, params.url.path))

        config.on_request_start.append(start)
        return config


@dataclass
class Chat:
    chat_id: str
    task_id: str
    agents: list[TeamsAgent]
    accepted_by: TeamsAgent


async def whole_chat(world: World, client: aiohttp.ClientSession,
                     open_headers: dict[str, str] | None = None) -> Chat:
    """Three agents; the offer goes to one who declines, one who lets it ring (RONA), and
    the last, who accepts; then lines both ways, terminate, wrap-up. `open_headers` go with
    the request that opens the chat."""
    agents = [TeamsAgent.enrolled(n, world.connector, client, world.base_url) for n in (1, 2, 3)]
    for agent in agents:
        await agent.register()
    async with client.post(world.server.make_url(f"{API}/chats"), json={
            "service": "sales", "text": WORDS[0], "customer": CUSTOMER},
            headers=open_headers) as response:
        assert response.status == 201, await response.text()
        chat = await response.json()
    used: list[TeamsAgent] = []

    async def next_offer() -> tuple[TeamsAgent, dict[str, Any]]:
        def find() -> tuple[TeamsAgent, dict[str, Any]] | None:
            for agent in agents:
                if agent not in used and agent.buttons("accept"):
                    return agent, agent.buttons("accept")[0]
            return None
        agent, invitation = await eventually(find)
        used.append(agent)
        return agent, invitation

    declining, invitation = await next_offer()
    decline = find_action(invitation["card"], "decline")
    assert decline is not None
    await declining.click("decline", decline["data"], reply_to=invitation["id"])
    await next_offer()
    await world.advance(30)  # the ring timeout: RONA
    accepting, invitation = await next_offer()
    accept = find_action(invitation["card"], "accept")
    assert accept is not None
    await accepting.click("accept", accept["data"], reply_to=invitation["id"])
    session_id = accept["data"]["session_id"]
    await eventually(lambda: any(" ¦ " in json.dumps(c["card"], ensure_ascii=False)
                                 for c in accepting.cards()))
    async with client.post(world.server.make_url(f"{API}/chats/{chat['chat_id']}/messages"),
                           json={"text": WORDS[1]},
                           headers={"Authorization": f"Bearer {chat['token']}"}) as response:
        assert response.status == 202
    await eventually(lambda: any(WORDS[1] in t for t in accepting.texts()))
    await accepting.say(WORDS[2])
    await accepting.click("terminate", {"session_id": session_id})
    await accepting.click("save_wrapup", {"session_id": session_id, "tags": "vip"})
    await world.advance(120)  # after-call work ends: the task is done
    await world.settle()
    return Chat(chat["chat_id"], chat["chat_id"], agents, accepting)  # the chat is its task
