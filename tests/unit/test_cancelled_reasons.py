"""The agent's cancelled card says who ended the task, for every way a task is cancelled."""

from __future__ import annotations

import json

import pytest

from bot.bootstrap import build_engine
from bot.dialogs.session_cards import outcome_card
from bot.services.lifecycle import cancel_task
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.fakes import FakeClock
from tests.scenario import add_agent, new_task, ringing, sessions_of

BY = {
    "customer": "The customer left before the task was accepted.",
    "requester": "The task was withdrawn through the API before it was accepted.",
    "supervisor": "A supervisor withdrew the task before it was accepted.",
    "system": "The customer's chat was idle too long and ended.",
    "privacy": "The task was withdrawn when the customer's data was erased.",
}


@pytest.mark.parametrize("by", sorted(BY))
async def test_the_cancelled_card_says_why(store: SqliteStore, clock: FakeClock,
                                           by: str) -> None:
    engine = build_engine(store, clock, catalog({"id": "sales"}))
    await add_agent(engine, 1)
    task = await new_task(engine, name="Jane Doe")
    assert await ringing(engine, task.id)  # an offer rings when the task is cancelled
    await engine.run(cancel_task, task.id, by=by)
    [session] = await sessions_of(engine, task.id)
    text = json.dumps(outcome_card(session, None, clock.now()))
    assert BY[by] in text
    assert by == "customer" or "The customer left" not in text
