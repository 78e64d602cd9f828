"""Graph answers 500 on chat creation: the task goes back to the queue, the agent is told, the
next agent takes it; a transient 503 is retried and bounces nothing.

Graph mode cannot be driven against `python -m bot` as a subprocess: with MicrosoftAppId set
the server checks the Bot Framework JWT on every inbound activity (signed by keys fetched from
login.botframework.com, which a test cannot produce), and MSAL only accepts an https authority
(the token stand-in is reached through an MSAL http client that exists only in-process). So
this test builds the app exactly as `python -m bot` does, from the same environment variables
through `load_settings`, and serves it on a real socket in this process with the two test seams
of `create_app` (`authenticate_inbound=False`, `msal_http_client=...`), real clock, real
scheduler. Everything else is driven over HTTP as in the other resilience tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.app import create_app
from bot.config import load_settings
from tests.resilience.harness import (
    Db,
    card_stage,
    card_text,
    free_port,
    make_customer,
    quiet,
    registered,
    services_file,
)
from tests.standins.connector import ConnectorStandin
from tests.standins.graph import GraphStandin, TokenStandin
from tests.support.cards import find_action
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually

APP_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "test-secret"


@dataclass
class GraphServer:
    url: str
    db: Db
    graph: GraphStandin
    tokens: TokenStandin


@pytest.fixture
async def graph_server(tmp_path: Path, connector: ConnectorStandin,
                       ) -> AsyncIterator[GraphServer]:
    async with TokenStandin(clients={APP_ID: SECRET}) as tokens, \
            GraphStandin(catalog={APP_ID: "catalog-app-1"}) as graph:
        port = free_port()
        db_path = tmp_path / "switchboard.db"
        settings = load_settings({
            "PORT": str(port),
            "SWITCHBOARD_DB": str(db_path),
            "SWITCHBOARD_SERVICES": str(services_file(tmp_path, ring_timeout="5s", acw="2s",
                                                      members=2)),
            "MicrosoftAppId": APP_ID,
            "MicrosoftAppPassword": SECRET,
            "MicrosoftAppTenantId": "tenant-1",
            "SWITCHBOARD_GRAPH_URL": graph.base_url,
            "SWITCHBOARD_AUTHORITY": tokens.authority_host,
            "SWITCHBOARD_SMTP_PORT": "0",
            "SWITCHBOARD_PUBLIC_HOST": "bot.example.com",
            "SWITCHBOARD_SERVICE_URL_HOSTS": "127.0.0.1",  # the Bot Connector stand-in
        })
        assert settings.graph_enabled and not settings.local_mode
        app = create_app(settings, authenticate_inbound=False,
                         msal_http_client=tokens.http_client())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield GraphServer(f"http://127.0.0.1:{port}", Db(db_path), graph, tokens)
        finally:
            await runner.cleanup()


async def accept_offer(agent: TeamsAgent, db: Db, task_id: str) -> str:
    """The agent's ringing offer for the task, accepted from its card; the session id."""
    [offer] = await eventually(lambda: [s for s in db.sessions(task_id)
                                        if s["phase"] == "ringing" and s["card_id"]
                                        and s["agent_id"] == agent.user_id], timeout=10)
    card = await eventually(lambda: agent.card(offer["card_id"]))
    action = find_action(card, "accept")
    assert action is not None and action["data"]["session_id"] == offer["id"]
    answer = await agent.click("accept", action["data"], reply_to=offer["card_id"])
    assert card_stage(answer) == "accepted"
    return str(offer["id"])


async def test_graph_500_on_chat_creation_requeues_tells_the_agent_and_the_next_one_takes_it(
        graph_server: GraphServer, connector: ConnectorStandin,
        client: aiohttp.ClientSession) -> None:
    server, db, graph = graph_server.url, graph_server.db, graph_server.graph
    agents = await registered(server, connector, client, 2)
    graph.fail_chat_creation(500)

    jane = make_customer(server, client)
    await jane.open("Hi, I need help", name="Jane Doe")
    [first_offer] = await eventually(lambda: db.sessions(jane.chat_id))
    first = next(a for a in agents if a.user_id == first_offer["agent_id"])
    second = next(a for a in agents if a is not first)
    failed_session = await accept_offer(first, db, jane.chat_id)

    # Chat creation fails: the session ends as failed, the card says so, the task re-queues.
    await eventually(lambda: db.session(failed_session)["result"] == "failed", timeout=10)
    card_id = db.session(failed_session)["card_id"]
    await eventually(lambda: card_stage(first.card(card_id)) == "failed", timeout=10)
    assert "could not be created" in card_text(first.card(card_id))
    assert len(graph.chat_requests) == 1, "a 500 is not retried"
    assert db.count_events("offer.failed", session_id=failed_session) == 1

    # The next agent gets it and, with Graph back, the chat opens with the transcript.
    graph.clear_failures()
    taken = await accept_offer(second, db, jane.chat_id)
    chat_id = await eventually(lambda: db.session(taken)["chat_id"], timeout=10)
    assert chat_id in graph.chats
    assert graph.chat_requests[-1]["topic"] == "Sales ¦ Jane Doe"
    header = await eventually(lambda: connector.activities.get(chat_id), timeout=10)
    assert "Hi, I need help" in card_text(header[0])
    await jane.say("Thanks!")
    await eventually(lambda: "Jane Doe: Thanks!" in connector.texts(chat_id), timeout=10)
    assert db.task_state(jane.chat_id) == "connected"
    # The record: failed, then offered to the next agent; the customer was told they queue.
    [failed] = db.events("offer.failed", session_id=failed_session)
    [reoffered] = db.events("offer.created", session_id=taken)
    queued = [e for e in db.events("task.queued", task_id=jane.chat_id)
              if failed["seq"] < e["seq"] < reoffered["seq"]]
    assert len(queued) == 1, "the record says the task went back to the queue"
    assert failed["seq"] < reoffered["seq"]
    kinds = [m["kind"] for m in db.messages(jane.chat_id) if m["sender"] == "system"]
    assert kinds == ["queued", "accepted", "queued", "accepted"], kinds

    # The first agent is not stuck: the next customer rings them, and a transient Graph 503
    # (twice) is retried by the sender instead of bouncing the task.
    graph.fail_chat_creation(503, times=2)
    bob = make_customer(server, client)
    await bob.open("Hello", name="Bob Roe")
    retried = await accept_offer(first, db, bob.chat_id)
    bob_chat = await eventually(lambda: db.session(retried)["chat_id"], timeout=15)
    assert bob_chat in graph.chats
    assert [r["topic"] for r in graph.chat_requests[-3:]] == ["Sales ¦ Bob Roe"] * 3
    assert db.session(retried)["result"] == "accepted"
    assert db.count_events("offer.failed") == 1
    await quiet(db)
    assert card_stage(first.card(db.session(retried)["card_id"])) == "accepted"
    assert db.integrity() == ["ok"]
