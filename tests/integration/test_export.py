"""Reporting export: filters, paging, CSV columns and key scoping on a known scenario."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.config import parse_catalog
from bot.domain.customer import Customer
from bot.domain.service import Modality
from bot.services import reporting
from bot.services.context import Ctx
from bot.services.dispatch import create_task
from bot.services.lifecycle import terminate
from bot.services.offers import accept, decline
from bot.services.wrapup import save_wrapup
from tests.scenario import ringing
from tests.support.world import World, running_world

ALL_KEY, SALES_KEY = "key-for-everything", "key-for-sales"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    members = ["a1@example.com", "a2@example.com"]
    services = parse_catalog({
        "service": [
            {"id": "sales", "name": "Sales", "members": members, "acw": {"duration": "0s"},
             "modalities": ["im", "external"],
             "context": {"store_data": True}},
            {"id": "support", "name": "Support", "members": members, "acw": {"duration": "0s"},
             "modalities": ["im", "external"]},
        ],
        "api_key": [
            {"name": "bi", "sha256": digest(ALL_KEY), "services": ["sales", "support"]},
            {"name": "crm", "sha256": digest(SALES_KEY), "services": ["sales"]},
        ],
    }, "test.toml")
    async with running_world(services, tmp_path) as running:
        await running.agent(1).register()
        await running.agent(2).register()
        await scenario(running)
        yield running


async def scenario(world: World) -> None:
    """Sales: Ann declined by one agent then accepted and saved with tag VIP; Support: Bob."""
    engine = world.engine
    ann = await engine.run(create_task, "sales", Modality.IM, customer=Customer(name="Ann"))
    [first] = await ringing(engine, ann.id)
    world.clock.advance(5)
    await engine.run(decline, first.id, first.agent_id)
    [second] = await ringing(engine, ann.id)
    world.clock.advance(5)
    await engine.run(accept, second.id, second.agent_id)
    world.clock.advance(60)
    await engine.run(terminate, second.id)
    await engine.run(save_wrapup, second.id, second.agent_id, primary=None, secondary=None,
                     tags=["VIP"])
    world.clock.advance(60)
    bob = await engine.run(create_task, "support", Modality.IM, customer=Customer(name="Bob"))
    [third] = await ringing(engine, bob.id)
    await engine.run(accept, third.id, third.agent_id)
    await engine.run(terminate, third.id)


async def get(world: World, path: str, key: str = ALL_KEY, *,
              csv_format: bool = False) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {key}"}
    if csv_format:
        headers["Accept"] = "text/csv"
    async with world.client.get(world.server.make_url(path), headers=headers) as response:
        body = await response.text() if csv_format or response.content_type != \
            "application/json" else await response.json()
        return response.status, body, dict(response.headers)


async def test_sessions_filters_and_customer_removal(world: World) -> None:
    status, body, _ = await get(world, "/api/v1/sessions")
    assert status == 200
    rows = body["items"]
    assert [(r["service_id"], r["result"]) for r in rows] == [
        ("sales", "declined"), ("sales", "accepted"), ("support", "accepted")]
    # Sales stores context; Support did not opt in, so Bob is gone once the task concluded.
    assert [r["customer"] for r in rows] == ["Ann", "Ann", "Not available"]
    assert rows[1]["tags"] == "VIP" and rows[1]["connected_seconds"] == 60.0
    _, body, _ = await get(world, "/api/v1/sessions?tag=vip")
    assert [r["result"] for r in body["items"]] == ["accepted"]
    _, body, _ = await get(world, "/api/v1/sessions?result=declined&service=sales")
    assert len(body["items"]) == 1
    start = rows[2]["offered_at"].replace("+00:00", "Z")
    _, body, _ = await get(world, f"/api/v1/sessions?from={start}")
    assert [r["service_id"] for r in body["items"]] == ["support"]
    _, body, _ = await get(world, f"/api/v1/sessions?to={start}")
    assert len(body["items"]) == 2
    agent = rows[1]["agent_id"]
    _, body, _ = await get(world, f"/api/v1/sessions?agent={agent}")
    assert all(r["agent_id"] == agent for r in body["items"]) and body["items"]


async def test_paging_with_the_cursor(world: World) -> None:
    seen: list[str] = []
    path = "/api/v1/sessions?limit=2"
    while True:
        _, body, headers = await get(world, path)
        seen += [r["session_id"] for r in body["items"]]
        if not body["next"]:
            break
        assert headers["X-Next-Cursor"] == body["next"]
        path = f"/api/v1/sessions?limit=2&cursor={body['next']}"
    _, everything, _ = await get(world, "/api/v1/sessions")
    assert seen == [r["session_id"] for r in everything["items"]]


async def test_csv_has_the_documented_columns(world: World) -> None:
    status, text, headers = await get(world, "/api/v1/sessions", csv_format=True)
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert tuple(table[0].keys()) == reporting.SESSION_COLUMNS
    assert [row["result_label"] for row in table] == ["Declined", "Accepted", "Accepted"]
    status, text, _ = await get(world, "/api/v1/events?service=sales", csv_format=True)
    events = list(csv.DictReader(io.StringIO(text)))
    assert tuple(events[0].keys()) == reporting.EVENT_COLUMNS
    names = [e["name"] for e in events]
    assert names[0] == "task.created" and "offer.declined" in names and "session.saved" in names
    assert all(e["service_id"] == "sales" for e in events)


async def test_keys_scope_what_is_exported(world: World) -> None:
    _, body, _ = await get(world, "/api/v1/sessions", SALES_KEY)
    assert {r["service_id"] for r in body["items"]} == {"sales"}
    status, body, _ = await get(world, "/api/v1/sessions?service=support", SALES_KEY)
    assert status == 403
    _, body, _ = await get(world, "/api/v1/events", SALES_KEY)
    assert {e["service_id"] for e in body["items"]} == {"sales"}
    status, _, _ = await get(world, "/api/v1/sessions", "wrong-key")
    assert status == 401
    for bad in ("limit=0", "from=yesterday", "from=2026-11-01T00:00:00", "result=maybe",
                "cursor=nonsense"):
        status, body, _ = await get(world, f"/api/v1/sessions?{bad}")
        assert status == 400 and body["error"], bad


async def relabel(ctx: Ctx, session_id: str, label: str) -> None:
    session = await ctx.uow.sessions.get(session_id)
    assert session is not None
    await ctx.uow.sessions.save(replace(session, customer_label=label))


async def test_csv_cells_a_spreadsheet_would_run_are_text(world: World) -> None:
    """Issue #19 item 5: a cell starting with = + - @, a tab or a CR gets a `'` first."""
    hostile = ["=HYPERLINK(\"http://evil.example\")", "+1+1", "-2+3", "@SUM(A1)",
               "\tx=1", "\rx=1"]
    for name in hostile:
        task = await world.engine.run(create_task, "sales", Modality.IM,
                                      customer=Customer(name=name))
        [offer] = await ringing(world.engine, task.id)
        await world.engine.run(accept, offer.id, offer.agent_id)
        await world.engine.run(terminate, offer.id)
    _, body, _ = await get(world, "/api/v1/sessions?limit=1000")
    shown = {row["customer"] for row in body["items"]}
    kept = [name for name in hostile if name in shown]
    assert len(kept) == 4  # the customer model strips the tab and the CR: the store need not
    for label in hostile[4:]:
        task = await world.engine.run(create_task, "sales", Modality.IM,
                                      customer=Customer(name="Someone"))
        [offer] = await ringing(world.engine, task.id)
        await world.engine.run(relabel, offer.id, label)
    _, text, _ = await get(world, "/api/v1/sessions?limit=1000", csv_format=True)
    cells = {row["customer"] for row in csv.DictReader(io.StringIO(text))}
    for name in hostile:
        assert "'" + name in cells and name not in cells
    assert "Ann" in cells  # other cells stay as they are
    _, json_body, _ = await get(world, "/api/v1/sessions?limit=1000")
    assert set(hostile) <= {row["customer"] for row in json_body["items"]}  # JSON is data
