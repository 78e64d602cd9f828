"""Issue #19: an export whose filter matches nothing never holds up the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from pathlib import Path

from bot.config import parse_catalog
from bot.storage.sqlite import SqliteStore
from tests.responsiveness import healthz_delays
from tests.support.world import World, running_world

KEY = "key-for-reports"
EVENTS = 200_000
SESSIONS = 50_000


async def fill(path: Path) -> None:
    """The store's schema, then rows written straight into it (no use cases: seconds, not
    minutes), spread over two services of which the key names one."""
    store = await SqliteStore(path).open()
    await store.close()
    start = time.time() - 86_400
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO events (at, name, task_id, session_id, agent_id, service_id, data)"
            " VALUES (?, 'offer.created', ?, NULL, 'a1', ?, '{}')",
            ((start + n * 0.01, f"t{n}", ("sales", "support")[n % 2]) for n in range(EVENTS)))
        db.executemany(
            "INSERT INTO sessions (id, version, task_id, agent_id, service_id, phase,"
            " offered_at, search, data) VALUES (?, 1, ?, 'a1', ?, 'ended', ?, '', ?)",
            ((f"s{n:06}", f"t{n}", ("sales", "support")[n % 2], start + n * 0.1,
              json.dumps({"result": "accepted", "tags": ["x"]}))
             for n in range(SESSIONS)))


async def walk(world: World, path: str) -> int:
    """Follow `next` to the end; the number of pages it took."""
    pages, cursor = 0, ""
    headers = {"Authorization": f"Bearer {KEY}"}
    while True:
        url = world.server.make_url(path + (f"&cursor={cursor}" if cursor else ""))
        async with world.client.get(url, headers=headers) as response:
            assert response.status == 200
            body = await response.json()
        pages += 1
        assert body["items"] == []
        if not body["next"]:
            return pages
        cursor = body["next"]


async def test_an_export_that_matches_nothing_does_not_hold_up_healthz(tmp_path: Path) -> None:
    await fill(tmp_path / "sb.db")
    catalog = parse_catalog({
        "service": [{"id": "sales", "name": "Sales", "members": ["a1@example.com"],
                     "modalities": ["im", "external"]},
                    {"id": "support", "name": "Support", "members": ["a1@example.com"],
                     "modalities": ["im", "external"]}],
        "api_key": [{"name": "bi", "sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                     "services": ["sales"]}],
    }, "test.toml")
    async with running_world(catalog, tmp_path) as world, healthz_delays(
            world.client, world.server.make_url("/healthz"), pause=0.002) as delays:
        await asyncio.sleep(0.05)
        event_pages = await walk(world, "/api/v1/events?name=nothing&limit=1")
        # The key's own services are a filter too: support's half is never looked at
        # in Python, and an agent no row has is a filter that matches nothing.
        session_pages = await walk(world, "/api/v1/sessions?agent=nobody&limit=1")
        tagged_pages = await walk(world, "/api/v1/sessions?tag=nothing&limit=1000")
    assert len(delays) > 10
    assert max(delays) < 0.1, f"/healthz took {max(delays) * 1000:.0f} ms"
    # Each page looked at a bounded window and said where to go on.
    assert event_pages > 1 and session_pages > 1 and tagged_pages > 1
