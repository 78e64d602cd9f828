"""My Sessions: live states, the detail card, search over customer and email, filters, paging."""

from __future__ import annotations

from typing import Any

import pytest

from bot.dialogs.caller import Caller, Member
from bot.dialogs.desk import Desk
from bot.services.engine import Engine
from tests.cards.walk import shown_texts
from tests.scenario import add_agent, new_task, ringing


class Directory:
    async def lookup(self, caller: Caller) -> Member:
        return Member(caller.name, None, None, None)


def texts(card: dict[str, Any]) -> str:
    return "\n".join(shown_texts(card))


@pytest.fixture
def desk(engine: Engine) -> Desk:
    return Desk(engine, Directory())


async def test_a_ringing_offer_shows_ringing(engine: Engine, desk: Desk) -> None:
    agent = await add_agent(engine, 1)
    task = await new_task(engine, name="Jane Doe")
    [offer] = await ringing(engine, task.id)
    listing = texts(await desk.sessions_card(Caller(agent), 0, ""))
    assert "Ringing" in listing and "Accepted" not in listing
    status = texts(await desk.status_card(Caller(agent)))
    assert "Ringing" in status and "Accepted" not in status
    assert offer.agent_id == agent
