"""My Sessions' JSON: filters as the card has them plus the service, sorting, paging, bad
input as 422, one session's details, and the wrap-up save with the card's rules (once; the
service's codes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.service import Modality
from bot.services.lifecycle import end_acw, terminate
from bot.services.offers import accept
from bot.services.wrapup import save_wrapup
from tests.builders import catalog
from tests.scenario import add_agent, new_task, ringing
from tests.support.world import World, running_world

KEEP = {"store_data": True}  # concluded sessions keep the customer (else "Not available")
SERVICES = catalog(
    {"id": "sales", "name": "Sales", "context": KEEP,
     "codes": {"primary": ["Sale", "No sale"], "required": True}},
    {"id": "support", "name": "Support", "context": KEEP},
)
AGENT = "Local a1@example.com"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(SERVICES, tmp_path) as running:
        yield running


async def handled(world: World, service: str, name: str, *, talk: float,
                  modality: Modality = Modality.IM, saved: bool = False) -> str:
    """Agent 1 takes a task, talks `talk` seconds, ends it (and ends ACW when `saved`)."""
    task = await new_task(world.engine, service, name=name, modality=modality)
    [offer] = await ringing(world.engine, task.id)
    await world.engine.run(accept, offer.id, offer.agent_id)
    world.clock.advance(talk)
    await world.engine.run(terminate, offer.id, agent_id=offer.agent_id)
    if saved:
        await world.engine.run(save_wrapup, offer.id, offer.agent_id,
                               primary="Sale" if service == "sales" else None,
                               secondary=None, tags=[f"tag-{name.split()[0].lower()}"])
        await world.engine.run(end_acw, offer.id, agent_id=offer.agent_id)
    world.clock.advance(60)
    return offer.id


async def call(world: World, method: str, path: str, body: Any = None,
               authorization: str = AGENT) -> tuple[int, Any]:
    async with world.client.request(method, world.server.make_url(path), json=body,
                                    headers={"Authorization": authorization}) as reply:
        return reply.status, await reply.json()


async def customers(world: World, query: str = "") -> list[str]:
    status, body = await call(world, "GET", f"/tabs/api/sessions?{query}")
    assert status == 200, body
    return [e["customer"] for e in body["entries"]]


@pytest.fixture
async def day(world: World) -> dict[str, str]:
    await add_agent(world.engine, 1)
    return {
        "ann": await handled(world, "sales", "Ann Archer", talk=30, saved=True),
        "bob": await handled(world, "support", "Bob Baker", talk=300, saved=True),
        "cid": await handled(world, "sales", "Cid Carter", talk=90,
                             modality=Modality.EXTERNAL),
    }


async def test_filters_narrow_and_sorting_orders(world: World, day: dict[str, str]) -> None:
    assert await customers(world) == ["Cid Carter", "Bob Baker", "Ann Archer"]  # newest first
    assert await customers(world, "q=BOB") == ["Bob Baker"]
    assert await customers(world, "q=tag-ann") == ["Ann Archer"]  # tags are searched
    assert await customers(world, "service=sales") == ["Cid Carter", "Ann Archer"]
    assert await customers(world, "modality=external") == ["Cid Carter"]
    assert await customers(world, "result=declined") == []
    assert await customers(world, "period=today&service=support") == ["Bob Baker"]
    assert await customers(world, "sort=talked&dir=desc") == [
        "Bob Baker", "Cid Carter", "Ann Archer"]
    assert await customers(world, "sort=customer&dir=asc") == [
        "Ann Archer", "Bob Baker", "Cid Carter"]
    world.clock.advance(2 * 86_400)  # the period counts back from now, like the card's
    assert await customers(world, "period=today") == []
    assert await customers(world, "period=7d") == ["Cid Carter", "Bob Baker", "Ann Archer"]


async def test_paging(world: World, day: dict[str, str]) -> None:
    status, first = await call(world, "GET", "/tabs/api/sessions?size=2&sort=customer&dir=asc")
    assert status == 200
    assert [e["customer"] for e in first["entries"]] == ["Ann Archer", "Bob Baker"]
    assert (first["total"], first["has_next"], first["has_previous"]) == (3, True, False)
    status, second = await call(world, "GET",
                                "/tabs/api/sessions?size=2&page=1&sort=customer&dir=asc")
    assert status == 200
    assert [e["customer"] for e in second["entries"]] == ["Cid Carter"]
    assert (second["has_next"], second["has_previous"]) == (False, True)


@pytest.mark.parametrize("query", ["result=won", "modality=fax", "service=nowhere",
                                   "period=forever", "sort=mood", "dir=up", "page=-1",
                                   "size=1000", "page=x", "q=" + "x" * 201])
async def test_bad_filters_are_422(world: World, day: dict[str, str], query: str) -> None:
    status, body = await call(world, "GET", f"/tabs/api/sessions?{query}")
    assert status == 422 and set(body) >= {"error", "field"}


async def test_details_say_what_the_card_says(world: World, day: dict[str, str]) -> None:
    status, body = await call(world, "GET", f"/tabs/api/sessions/{day['ann']}")
    assert status == 200
    rows = dict(body["rows"])
    assert rows["Customer"] == "Ann Archer" and rows["Service"] == "Sales"
    assert rows["Primary code"] == "Sale" and rows["Tags"] == "tag-ann"
    assert rows["Connected"] == "30 seconds" and body["wrapup"] is None
    status, body = await call(world, "GET", f"/tabs/api/sessions/{day['cid']}")
    assert body["wrapup"]["primary_codes"] == ["Sale", "No sale"]
    assert body["wrapup"]["codes_required"] is True
    status, body = await call(world, "GET", "/tabs/api/sessions/not-a-session")
    assert status == 404


async def test_a_wrap_up_is_saved_once_with_the_services_codes(
        world: World, day: dict[str, str]) -> None:
    path = f"/tabs/api/sessions/{day['cid']}/wrapup"
    status, body = await call(world, "POST", path, {"tags": ["later"]})
    assert status == 422 and body["field"] == "primary_code"  # the service requires a code
    status, body = await call(world, "POST", path, {"primary_code": "Bribe"})
    assert status == 422 and body["field"] == "primary_code"
    for bad in ({"tags": "a,b"}, {"tags": [1]}, {"primary_code": 5}):
        status, body = await call(world, "POST", path, bad)
        assert status == 422, bad
    status, body = await call(world, "POST", path, {"primary_code": "No sale",
                                                    "tags": ["callback", " "]})
    assert status == 200 and body["wrapup"] is None
    assert body["entry"]["primary_code"] == "No sale" and body["entry"]["tags"] == ["callback"]
    status, body = await call(world, "POST", path, {"primary_code": "Sale"})
    assert status == 409 and "already saved" in body["error"]
    status, body = await call(world, "GET", f"/tabs/api/sessions/{day['cid']}")
    assert body["entry"]["primary_code"] == "No sale"


async def test_nobody_saves_someone_elses_session(world: World, day: dict[str, str]) -> None:
    await add_agent(world.engine, 2)
    status, body = await call(world, "POST", f"/tabs/api/sessions/{day['cid']}/wrapup",
                              {"primary_code": "Sale"}, authorization="Local a2@example.com")
    assert status == 404 and "Cid" not in str(body)
    async with world.client.post(world.server.make_url(
            f"/tabs/api/sessions/{day['cid']}/wrapup"), data=b"{not json",
            headers={"Authorization": AGENT}) as reply:
        assert reply.status == 400
