"""With Graph credentials: Accept creates the `<Service> ¦ <Customer>` chat and relays both ways."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from bot.domain.customer import Customer
from bot.domain.service import Modality
from bot.domain.session import SessionResult
from bot.domain.task import TaskState
from bot.services import conversation
from bot.services.dispatch import create_task
from tests.builders import catalog
from tests.scenario import load_task, sessions_of
from tests.standins.graph import GraphStandin, TokenStandin
from tests.support.cards import find_action
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually
from tests.support.world import World, running_world

APP_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "test-secret"


@dataclass
class GraphWorld:
    world: World
    graph: GraphStandin
    tokens: TokenStandin


@pytest.fixture
async def graph_world(tmp_path: Path) -> AsyncIterator[GraphWorld]:
    services = catalog({"id": "sales", "name": "Sales", "codes": {"primary": ["Sale", "No sale"]}})
    async with TokenStandin(clients={APP_ID: SECRET}) as tokens, \
            GraphStandin(catalog={APP_ID: "catalog-app-1"}) as graph, running_world(
        services, tmp_path, app_id=APP_ID, app_password=SECRET, tenant_id="tenant-1",
        graph_url=graph.base_url, authority=tokens.authority_host,
        service_url_hosts=("127.0.0.1",),  # the Bot Connector stand-in
        app_options={"authenticate_inbound": False,
                     "msal_http_client": tokens.http_client()},
    ) as world:
        yield GraphWorld(world, graph, tokens)


async def accept_task(world: World, agent: TeamsAgent, name: str) -> tuple[str, str]:
    task = await world.engine.run(create_task, "sales", Modality.IM,
                                  customer=Customer(name=name), content={"text": "Hello"})
    await world.engine.run(conversation.customer_message, task.id, "Hello there")
    [invitation] = await eventually(lambda: agent.buttons("accept"))
    session_id, _ = await agent.accept(invitation)
    return task.id, session_id


async def test_accept_creates_the_chatroom_and_relays(graph_world: GraphWorld) -> None:
    world, graph = graph_world.world, graph_world.graph
    agent = world.agent(1)
    await agent.register()
    task_id, _ = await accept_task(world, agent, "Jane Doe")
    chat = await eventually(lambda: graph.chat_requests)
    assert chat[0]["topic"] == "Sales ¦ Jane Doe"
    assert chat[0]["chatType"] == "group"
    assert chat[0]["members"][0]["user@odata.bind"].endswith(f"users('{agent.aad}')")
    chat_id = await eventually(lambda: next(iter(graph.chats), None))
    installed = await eventually(lambda: graph.installed_apps)
    assert installed[0][0] == chat_id
    # Header with the transcript so far, then the customer's next message, in the chatroom.
    header = await eventually(lambda: world.connector.activities.get(chat_id))
    assert "Hello there" in str(header[0]["attachments"][0]["content"])
    await world.engine.run(conversation.customer_message, task_id, "Any news?")
    await eventually(lambda: "Jane Doe: Any news?" in world.connector.texts(chat_id))
    # The accepted card now links to the new chat.
    deep_link = f"https://teams.microsoft.com/l/chat/{quote(chat_id, safe='')}/conversations"
    await eventually(lambda: any(deep_link in json.dumps(world.connector.latest.get(c["id"], {}))
                                 for c in agent.cards()))
    # The agent writes in the chatroom: stored for the customer; `end` terminates.
    await agent.say_in(chat_id, "Here is your quote")
    transcript = await world.engine.run(conversation.transcript, task_id)
    assert ("agent", "Here is your quote") in [(m.sender.value, m.text) for m in transcript]
    await agent.say_in(chat_id, "end")
    assert (await load_task(world.engine, task_id)).state is TaskState.WRAPUP
    assert graph_world.tokens.token_requests, "Graph calls carry an app-only token from MSAL"


async def test_long_names_are_cut_and_anonymous_customers_are_visitors(
    graph_world: GraphWorld,
) -> None:
    world, graph = graph_world.world, graph_world.graph
    agent = world.agent(1)
    await agent.register()
    _, first = await accept_task(world, agent, "N" * 300)
    topic = (await eventually(lambda: graph.chat_requests))[0]["topic"]
    assert len(topic) == 249 and topic.startswith("Sales ¦ NNN")
    await agent.click("terminate", {"session_id": first})
    await agent.click("end_acw", {"session_id": first})
    await accept_task(world, agent, "")
    await eventually(lambda: len(graph.chat_requests) == 2)
    assert graph.chat_requests[1]["topic"] == "Sales ¦ Visitor 1"


async def test_failed_chat_creation_requeues_and_tells_the_agent(
    graph_world: GraphWorld,
) -> None:
    world, graph = graph_world.world, graph_world.graph
    graph.fail_chat_creation(500)
    first, second = world.agent(1), world.agent(2)
    await first.register()
    await second.register()
    task_id, session_id = await accept_task(world, first, "Jane Doe")

    def failed_card() -> bool:
        return any("could not be created" in str(world.connector.latest.get(c["id"], {}))
                   for c in first.cards())

    await eventually(failed_card, timeout=15)
    sessions = await sessions_of(world.engine, task_id)
    assert [s.result for s in sessions if s.id == session_id] == [SessionResult.FAILED]
    # Nobody is stuck: the task rings the next agent.
    await eventually(lambda: second.buttons("accept"))
    assert (await load_task(world.engine, task_id)).state is TaskState.RINGING


async def test_codes_and_tags_from_the_chatroom_header(graph_world: GraphWorld) -> None:
    """Seed 004: codes and tags during the session; the chatroom's header offers them too."""
    world = graph_world.world
    agent = world.agent(1)
    await agent.register()
    task_id, session_id = await accept_task(world, agent, "Jane Doe")
    chat_id = await eventually(lambda: next(iter(graph_world.graph.chats), None))
    [posted] = await eventually(lambda: world.connector.activities.get(chat_id))
    header = posted["attachments"][0]["content"]

    saved = await agent.press(header, "save_wrapup", {"primary_code": "Sale", "new_tags": "vip"},
                              reply_to=posted["id"], in_chat=chat_id)
    text = json.dumps(saved, ensure_ascii=False)
    assert "Sales ¦ Jane Doe" in text and "Hello there" in text  # still the header
    assert "Wrap-up saved" in text and "Sale" in text and "vip" in text
    assert find_action(saved, "save_wrapup") is None
    [session] = [s for s in await sessions_of(world.engine, task_id) if s.id == session_id]
    assert (session.primary_code, session.tags) == ("Sale", ["vip"])
    # The agent's own card follows: the accepted card shows the saved wrap-up.
    await eventually(lambda: any("Wrap-up saved" in json.dumps(c["card"]) and
                                 find_action(c["card"], "save_wrapup") is None
                                 for c in agent.buttons("terminate")))

    # A second save (from a header drawn before the first) is refused with a message.
    again = await agent.press(header, "save_wrapup", {"primary_code": "No sale"},
                              reply_to=posted["id"], in_chat=chat_id)
    assert "already" in json.dumps(again).lower()
    [session] = [s for s in await sessions_of(world.engine, task_id) if s.id == session_id]
    assert session.primary_code == "Sale"

    # Terminate from the header asks first, then ends the chat; the header says so.
    ended = await agent.press(saved, "terminate", reply_to=posted["id"], in_chat=chat_id)
    assert "Conversation ended" in json.dumps(ended) and find_action(ended, "terminate") is None
    assert not (await load_task(world.engine, task_id)).state.live
