"""An app life for web-request tests: a store on a SQLite file, an engine with web requests
installed, a fake clock; open it again on the same file to restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from bot.bootstrap import Outside, build_engine
from bot.domain.events import Event
from bot.domain.service import Catalog
from bot.domain.webhooks.model import Delivery
from bot.services.context import Ctx
from bot.services.engine import Engine
from bot.services.ports import Store
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.fakes import FakeClock

SECRET = "s3cr3t-for-the-receiver-0123456789"


def services(*templates: dict[str, Any], **service: Any) -> Catalog:
    return catalog({"id": "sales", "name": "Sales", "web_request": list(templates),
                    **service})


@asynccontextmanager
async def running(store: Store | Path, clock: FakeClock,
                  services: Catalog) -> AsyncIterator[Engine]:
    """One life of the app: an engine with web requests on the store (opened on a path)."""
    opened = await SqliteStore(store).open() if isinstance(store, Path) else store
    try:
        async with aiohttp.ClientSession() as http:
            yield build_engine(opened, clock, services, Outside(webhooks=http))
    finally:
        if isinstance(store, Path):
            await opened.close()


async def drain(engine: Engine) -> int:
    """Fire what is due now until nothing is, as the scheduler loop does."""
    fired = 0
    while batch := await engine.jobs.fire_due():
        fired += batch
    return fired


async def later(engine: Engine, clock: FakeClock, seconds: float) -> int:
    clock.advance(seconds)
    return await drain(engine)


async def events(engine: Engine, *names: str) -> list[Event]:
    async def read(ctx: Ctx) -> list[Event]:
        return await ctx.uow.events.after(0, 10**9)
    found = await engine.run(read)
    return [e for e in found if not names or e.name in names]


async def pending(engine: Engine, task_id: str) -> list[Delivery]:
    async def read(ctx: Ctx) -> list[Delivery]:
        return await ctx.uow.outbox.pending(task_id, 100)
    return await engine.run(read)
