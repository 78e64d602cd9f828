"""bot/services/live_status.py on both stores: the picture of a scripted scene, exactly."""

from __future__ import annotations

import pytest

from bot.domain.service import Catalog
from bot.domain.timers import RING_TIMEOUT
from bot.services import live_status
from bot.services.engine import Engine
from bot.services.lifecycle import terminate
from bot.services.live_status import JobsStatus, ServiceStatus
from bot.services.offers import accept
from tests.builders import catalog
from tests.contract.conftest import backend, cosmos_server, store  # noqa: F401 (fixtures)
from tests.fakes import FakeClock
from tests.scenario import add_agent, new_task, ringing

STATES = ("unregistered", "off_duty", "not_available", "rona", "ringing", "busy", "acw",
          "available")

@pytest.fixture
def services() -> Catalog:
    return catalog({"id": "sales"}, {"id": "support"})


def agents(**counts: int) -> dict[str, int]:
    return {state: counts.get(state, 0) for state in STATES}


async def test_the_live_picture_of_a_scene(engine: Engine, clock: FakeClock) -> None:
    first = await add_agent(engine, 1)
    clock.advance(1)
    await add_agent(engine, 2)
    await add_agent(engine, 3, register=False)  # installed only: no member of any service
    connected = await new_task(engine)
    [offer] = await ringing(engine, connected.id)
    await engine.run(accept, offer.id, first)
    await new_task(engine)  # rings agent 2
    clock.advance(10)
    await new_task(engine)  # nobody free: queued
    await new_task(engine, "support")  # queued too

    picture = await engine.read(live_status.services_status)
    everyone = agents(busy=1, ringing=1)  # the two are members of both services
    assert picture == [
        ServiceStatus("sales", queued=1, ringing=1, oldest_wait_seconds=10.0, agents=everyone,
                      sessions_live=1, sessions_acw=0),
        ServiceStatus("support", queued=1, ringing=0, oldest_wait_seconds=0.0,
                      agents=everyone, sessions_live=0, sessions_acw=0)]
    assert picture[0].waiting == 2

    await engine.run(terminate, offer.id, agent_id=first)
    [sales, _support] = await engine.read(live_status.services_status)
    assert (sales.sessions_live, sales.sessions_acw) == (0, 1)
    assert sales.agents == agents(acw=1, ringing=1)

    # The ring timeout of the ringing offer (due 30 s after it) has waited 40 s when nobody
    # fires it: due and overdue.
    assert await engine.read(live_status.jobs_status, [RING_TIMEOUT]) == JobsStatus(0, 0)
    clock.advance(60)
    assert await engine.read(live_status.jobs_status, [RING_TIMEOUT]) == JobsStatus(1, 1)
