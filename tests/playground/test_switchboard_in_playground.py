"""Switchboard against the real Microsoft 365 Agents Playground: the local Teams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.app import ENGINE, create_app
from bot.config import DEMO_SERVICES, Settings, load_catalog
from bot.domain.customer import Customer
from bot.domain.service import Modality
from bot.services.dispatch import create_task
from bot.services.engine import Engine
from tests.playground.fixtures import PlaygroundFactory
from tests.playground.harness import Playground


@pytest.fixture
async def switchboard(tmp_path: Path) -> AsyncIterator[TestServer]:
    settings = Settings(catalog=load_catalog(DEMO_SERVICES), db_path=str(tmp_path / "sb.db"))
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def test_install_help_invitation_and_accept(
    switchboard: TestServer, playground_factory: PlaygroundFactory,
) -> None:
    pg: Playground = await playground_factory(str(switchboard.make_url("/api/messages")))
    engine: Engine = switchboard.app[ENGINE]

    await pg.install()
    welcome = await pg.wait_for_message("Register", with_card=True, timeout=10)
    assert welcome.cards

    mark = pg.mark()
    await pg.send_text(pg.personal_chat_id, "help")
    await pg.wait_for_message("sessions", since=mark, timeout=10)

    mark = pg.mark()
    await pg.send_text(pg.personal_chat_id, "register")
    # Alex Wilber (alexw@example.com, from the playground's member API) is in both demo services.
    await pg.wait_for_message("Sales", since=mark, timeout=10)

    mark = pg.mark()
    await engine.run(create_task, "sales", Modality.IM, customer=Customer(name="Jane Doe"),
                     content={"text": "I would like a quote"})
    invitation = await pg.wait_for_message("Accept", since=mark, with_card=True, timeout=10)
    assert "Jane Doe" in invitation.all_text

    session_id = _session_id(invitation.cards[0])
    mark = pg.mark()
    await pg.send_custom_activity(pg.card_action_activity(
        invitation.message_id or "", "accept", {"session_id": session_id}))
    updated = await pg.wait_for_update(invitation.message_id or "", since=mark,
                                       contains="Terminate", timeout=10)
    assert "Jane Doe" in updated.all_text


def _session_id(card: dict[str, object]) -> str:
    import json

    text = json.dumps(card)
    marker = '"verb": "accept", "data": {"session_id": "'
    start = text.index(marker) + len(marker)
    return text[start: text.index('"', start)]
