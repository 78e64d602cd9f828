"""Install → register → task → invitation → Accept → relay → Terminate → wrap-up → Concluded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.customer import Customer
from bot.domain.service import Modality
from bot.services import conversation
from bot.services.dispatch import create_task
from tests.builders import catalog
from tests.support.cards import find_action
from tests.support.waiting import eventually
from tests.support.world import World, running_world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    services = catalog({"id": "sales", "name": "Sales",
                        "codes": {"primary": ["Sale", "No sale"]}}, {"id": "support"})
    async with running_world(services, tmp_path) as running:
        yield running


def texts_of(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


async def test_install_register_and_help(world: World) -> None:
    agent = world.agent(1)
    await agent.install()
    await eventually(lambda: agent.cards())
    assert "Register" in texts_of(agent.cards()[0]["card"])
    await agent.say("register")
    await eventually(lambda: any("registered" in t for t in agent.texts()))
    assert "Sales" in agent.texts()[-1]
    await agent.say("help")
    await eventually(lambda: len(agent.cards()) == 2)


async def test_unregistered_agents_get_a_hint(world: World) -> None:
    agent = world.agent(1)
    await agent.install()
    await agent.say("status")
    await eventually(lambda: any("not registered" in t for t in agent.texts()))


async def test_whole_im_flow_local_mode(world: World) -> None:
    agent = world.agent(1)
    await agent.register()
    task = await world.engine.run(create_task, "sales", Modality.IM,
                                  customer=Customer(name="Jane Doe"),
                                  content={"text": "Hi, I need a quote"})
    await world.engine.run(conversation.customer_message, task.id, "Hi, I need a quote")
    [invitation] = await eventually(lambda: agent.buttons("accept"))
    card_id = invitation["id"]
    accept = find_action(invitation["card"], "accept")
    assert accept is not None
    session_id = accept["data"]["session_id"]
    accepted = await agent.click("accept", {"session_id": session_id}, reply_to=card_id)
    assert find_action(accepted, "terminate") is not None
    # The same card is updated in place for every other client of the agent.
    await eventually(lambda: find_action(world.connector.latest[card_id], "terminate"))
    # Local mode: the chat header with the transcript lands in the personal chat.
    headers = await eventually(lambda: [c["card"] for c in agent.cards()
                                        if "Sales ¦ Jane Doe" in texts_of(c["card"])])
    assert "I need a quote" in texts_of(headers[0])
    # Customer → agent.
    await world.engine.run(conversation.customer_message, task.id, "Are you there?")
    await eventually(lambda: "Jane Doe: Are you there?" in agent.texts())
    # Agent → customer: stored in the conversation for the customer's channel.
    await agent.say("Yes, one moment")
    messages = await world.engine.run(conversation.transcript, task.id)
    assert [(m.sender.value, m.text) for m in messages][-1] == ("agent", "Yes, one moment")
    # Terminate → wrap-up form; a save without the required code is refused, then saved.
    wrapup = await agent.click("terminate", {"session_id": session_id}, reply_to=card_id)
    assert find_action(wrapup, "save_wrapup") is not None
    refused = await agent.click("save_wrapup", {"session_id": session_id, "tags": "VIP"},
                                reply_to=card_id)
    assert "primary code" in texts_of(refused)
    concluded = await agent.click("save_wrapup", {"session_id": session_id,
                                                  "primary_code": "Sale", "tags": "VIP"},
                                  reply_to=card_id)
    assert "VIP" in texts_of(concluded) and find_action(concluded, "save_wrapup") is None
    # The answers showed each step on the card clicked; its update for the agent's other
    # clients settles, then carries the last of them.
    assert "VIP" not in texts_of(world.connector.latest[card_id])
    await world.settle_cards()
    await eventually(lambda: "VIP" in texts_of(world.connector.latest[card_id]))
