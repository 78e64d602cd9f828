"""Store cost of one chat: SQL statements, transactions and store-lock time per use case.

SQLite runs every unit of work that may write under one lock, so the lock time a chat needs
bounds the tasks per second of one instance. This runs the app in this process (so it can
count), registers the agents, drives a few complete chats at low concurrency, and counts by
wrapping ``Engine.run`` and the SQLite unit of work's ``__aenter__``/``__aexit__`` for the
duration (restored afterwards); the unit of work counts its own statements and hops (trips to
the database: writes are held back and travel with the next read or the commit, so hops <
statements) and how long it held the store lock (a unit of work that commits lets the lock go
once its COMMIT is sent). Read-only units of work (``SqliteStore.read_only``) hold no
lock: they count statements and hops, no lock time. If the store internals change so that the
wrappers no longer fit, it reports ``available: false``.

``python -m bench.storecost`` prints the figures as JSON.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.agents import AgentSim
from bench.connector import bench_connector
from bench.customers import Customers
from bench.procs import free_port
from bench.scene import Chat, Scene
from bench.services import PATH as SERVICES_PATH
from bot.domain.timers import CARD_SETTLE

PASSES = ((20, 4),)  # (chats, how many at once)
AGENTS = 300

# Units of work outside Engine.run: the scheduler's fire_due / next_due_in polling.
_use_case: contextvars.ContextVar[str] = contextvars.ContextVar(
    "use_case", default="(scheduler: fire_due, next_due_in)")


class Tally:
    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.hops: Counter[str] = Counter()  # trips to the database
        self.runs: Counter[str] = Counter()
        self.held: Counter[str] = Counter()  # seconds the store lock was held

    def clear(self) -> None:
        self.statements.clear()
        self.hops.clear()
        self.runs.clear()
        self.held.clear()


@contextmanager
def counting(tally: Tally) -> Iterator[None]:
    from bot.services.engine import Engine
    from bot.storage.sqlite import SqliteUnitOfWork

    saved = {(Engine, "run"): Engine.run}
    saved[(SqliteUnitOfWork, "__aexit__")] = SqliteUnitOfWork.__aexit__
    run, leave = Engine.run, SqliteUnitOfWork.__aexit__

    async def counted_run(self: Any, use_case: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(use_case, "__qualname__", repr(use_case)).replace(".<locals>", "")
        token = _use_case.set(name)
        tally.runs[name] += 1
        try:
            return await run(self, use_case, *args, **kwargs)
        finally:
            _use_case.reset(token)

    async def counted_leave(self: Any, *exc: Any) -> Any:
        try:
            return await leave(self, *exc)
        finally:
            name = _use_case.get()
            tally.held[name] += self.held  # from acquiring the lock to letting it go
            tally.statements[name] += self.statements  # BEGIN, COMMIT and ROLLBACK included
            tally.hops[name] += self.hops

    Engine.run = counted_run  # type: ignore[method-assign]
    SqliteUnitOfWork.__aexit__ = counted_leave  # type: ignore[method-assign]
    try:
        yield
    finally:
        for (owner, name), function in saved.items():
            setattr(owner, name, function)


async def measure(tmp: Path) -> dict[str, Any]:
    from bot.app import create_app
    from bot.config import load_settings

    try:
        settings = replace(load_settings({"SWITCHBOARD_SERVICES": str(SERVICES_PATH),
                                          "SWITCHBOARD_SMTP_PORT": "0"}),
                           db_path=str(tmp / "storecost.db"))
    except TypeError as exc:
        return {"available": False, "why": str(exc)}
    tally = Tally()
    with counting(tally):
        app = create_app(settings, connector_time_scale=0.001)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}"
        connector = await bench_connector().start()
        scene = Scene(connector.service_url)
        connector.listeners.append(scene.on_activity)
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        customer_http = aiohttp.ClientSession()
        workers: list[asyncio.Task[None]] = []
        try:
            agents = [AgentSim(n, scene, connector, http, url) for n in range(1, AGENTS + 1)]
            gate = asyncio.Semaphore(20)

            async def register(agent: AgentSim) -> None:
                agent.enrol()
                async with gate:
                    await agent.register()

            await asyncio.gather(*(register(agent) for agent in agents))
            workers = [asyncio.create_task(agent.run()) for agent in agents]
            customers = Customers(scene, url, [customer_http])
            passes = []
            for chats, at_once in PASSES:
                tally.clear()
                before = connector.posts, connector.puts
                result = await one_pass(scene, customers, tally, chats, at_once)
                result["connector_posts_per_chat"] = round(
                    (connector.posts - before[0]) / result["chats"], 1)
                result["connector_puts_per_chat"] = round(
                    (connector.puts - before[1]) / result["chats"], 1)
                passes.append(result)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await http.close()
            await customer_http.close()
            await connector.close()
            await runner.cleanup()
    return {"available": True, "agents": AGENTS, "errors": scene.samples.error_count,
            "passes": passes, **passes[0]}


async def one_pass(scene: Scene, customers: Customers, tally: Tally, chats: int,
                   at_once: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(at_once)
    mine = [scene.new_chat(f"storecost{at_once}") for _ in range(chats)]

    async def one(chat: Chat) -> None:
        async with gate:
            await customers.converse(chat, count=2, interval=0.1)

    start = time.monotonic()
    await asyncio.gather(*(one(chat) for chat in mine))
    seconds = time.monotonic() - start
    # The last card updates: a clicked card's is due CARD_SETTLE later (a second more at most).
    await asyncio.sleep((CARD_SETTLE + timedelta(seconds=1.5)).total_seconds())
    per = max(1, sum(c.done.is_set() for c in mine))
    top = sorted(tally.statements, key=lambda k: (-tally.held[k], -tally.hops[k]))[:12]
    return {
        "chats": per, "at_once": at_once, "chats_per_s": round(per / seconds, 1),
        "statements_per_chat": round(sum(tally.statements.values()) / per, 1),
        "hops_per_chat": round(sum(tally.hops.values()) / per, 1),
        "transactions_per_chat": round(sum(tally.runs.values()) / per, 1),
        "lock_ms_per_chat": round(sum(tally.held.values()) * 1000 / per, 1),
        "by_use_case": [{"use_case": k, "runs": round(tally.runs[k] / per, 1),
                         "statements": round(tally.statements[k] / per, 1),
                         "hops": round(tally.hops[k] / per, 1),
                         "lock_ms": round(tally.held[k] * 1000 / per, 2)} for k in top],
    }


def main() -> None:
    import json
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        result = asyncio.run(measure(Path(folder)))
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
