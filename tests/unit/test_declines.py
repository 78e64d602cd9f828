"""A decline hands the task to the other eligible agents first (`redecline_after`)."""

from __future__ import annotations

import pytest

from bot.bootstrap import build_engine
from bot.domain.session import Session, SessionResult
from bot.services.engine import Engine
from bot.services.lifecycle import terminate
from bot.services.offers import accept, decline
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.fakes import FakeClock
from tests.scenario import advance, first_of_two_rings, new_task, ringing, sessions_of


@pytest.fixture
def held(store: SqliteStore, clock: FakeClock) -> Engine:
    # redecline_after is 2m by default
    return build_engine(store, clock, catalog({"id": "sales", "acw": {"duration": "0s"}}))


async def test_a_decline_waits_for_the_busy_agent_not_for_the_decliner(
        held: Engine, clock: FakeClock) -> None:
    busy, free, first, offer = await first_of_two_rings(held, clock, name="First")
    await held.run(accept, offer.id, busy)  # agent 1 is busy with the first chat

    task = await new_task(held, name="Second")
    [offer] = await ringing(held, task.id)
    assert offer.agent_id == free
    await held.run(decline, offer.id, free)
    assert await ringing(held, task.id) == []  # not back to the one who declined
    await advance(held, clock, 60)
    assert await ringing(held, task.id) == []  # still not, 1 min later

    await held.run(terminate, accepted_of(await sessions_of(held, first.id)), agent_id=busy)
    [next_offer] = await ringing(held, task.id)
    assert next_offer.agent_id == busy


def accepted_of(sessions: list[Session]) -> str:
    return next(s.id for s in sessions if s.result is SessionResult.ACCEPTED)


async def test_the_decliner_gets_it_again_after_redecline_after(
        held: Engine, clock: FakeClock) -> None:
    busy, free, _, offer = await first_of_two_rings(held, clock, name="First")
    await held.run(accept, offer.id, busy)
    task = await new_task(held, name="Second")
    [offer] = await ringing(held, task.id)
    await held.run(decline, offer.id, free)
    await advance(held, clock, 119)
    assert await ringing(held, task.id) == []
    await advance(held, clock, 1)
    [again] = await ringing(held, task.id)
    assert again.agent_id == free


async def test_the_decliner_gets_it_again_once_everyone_else_declined(
        held: Engine, clock: FakeClock) -> None:
    one, two, task, offer = await first_of_two_rings(held, clock)
    await held.run(decline, offer.id, one)
    [offer] = await ringing(held, task.id)
    assert offer.agent_id == two
    await held.run(decline, offer.id, two)
    [offer] = await ringing(held, task.id)  # nobody else is left: back to the first at once
    assert offer.agent_id == one
