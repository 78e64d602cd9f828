"""Routing micro-benchmark: the time of one offer decision over in-memory agents and tasks.

An offer decision is what ``bot.services.dispatch.dispatch`` does for a queued task once its
rows are loaded: ``pick_agents(task, members, catalog, now)``. ``next_tasks`` (the in-memory
queue order; the app lets SQLite's index order the queue instead) is timed on its own.

The agents are a contact center under load: a fifth available, the rest ringing, connected,
in after-call work, RONA or off duty; a third of the tasks have been tried by a few agents.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.agent import Agent, Engagement
from bot.domain.routing import next_tasks, pick_agents
from bot.domain.service import Catalog, Modality, Service
from bot.domain.task import Task

SIZES = ((500, 5_000), (5_000, 50_000))
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SERVICE = "bench"
MIX = (("available", 0.20), ("connected", 0.40), ("ringing", 0.10), ("acw", 0.15),
       ("rona", 0.05), ("off", 0.10))


def make_agents(count: int, rng: random.Random) -> list[Agent]:
    agents: list[Agent] = []
    states = [name for name, share in MIX for _ in range(round(share * 1000))]
    for n in range(count):
        state = states[rng.randrange(len(states))]
        agent = Agent(id=f"29:agent-{n}", name=f"Agent {n}", registered=True,
                      services=[SERVICE], idle_since=NOW - timedelta(seconds=rng.randrange(3600)))
        if state in ("connected", "ringing", "acw"):
            agent.engagements.append(Engagement(f"s{n}", f"t{n}", SERVICE, Modality.IM, state))
        elif state == "rona":
            agent.rona_until = NOW + timedelta(minutes=5)
        elif state == "off":
            agent.profile = "Off Duty"
        agents.append(agent)
    return agents


def make_tasks(count: int, agents: list[Agent], rng: random.Random) -> list[Task]:
    tasks = []
    for n in range(count):
        enqueued = NOW - timedelta(seconds=rng.randrange(3600))
        task = Task(id=f"task-{n:06d}", service_id=SERVICE, modality=Modality.IM,
                    created_at=enqueued, enqueued_at=enqueued, priority=rng.choice((0, 0, 0, 1)))
        if rng.random() < 0.3:
            task.tried = [a.id for a in rng.sample(agents, 3)]
        tasks.append(task)
    return tasks


def _timed(function: Any, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def measure(agents_count: int, tasks_count: int, seed: int = 1) -> dict[str, float]:
    rng = random.Random(seed)
    catalog = Catalog(services={SERVICE: Service(id=SERVICE, name="Bench")})
    agents = make_agents(agents_count, rng)
    queue = make_tasks(tasks_count, agents, rng)
    order = next_tasks(queue)
    heads = iter(order * 2)
    decisions = max(30, min(300, 100_000 // agents_count))
    # Best of three medians, as timeit takes the best: the code's cost, less the machine's
    # other load.
    rounds = []
    for _ in range(3):
        gc.collect()
        rounds.append(_timed(lambda: pick_agents(next(heads), agents, catalog, NOW), decisions))
    pick = min(rounds, key=statistics.median)
    sort = _timed(lambda: next_tasks(queue), 3)
    return {
        "agents": agents_count,
        "tasks": tasks_count,
        "pick_ms": statistics.median(pick) * 1000,
        "pick_p99_ms": sorted(pick)[math.ceil(0.99 * len(pick)) - 1] * 1000,
        "next_tasks_ms": min(sort) * 1000,
    }


async def _store_load(agents_count: int, folder: str) -> float:
    """What dispatch() reads before each decision: the queue head and every member, decoded.
    The agents are written in one batch (rows as the store writes them), then read through the
    store's own repositories."""
    from bot.storage.sqlite import SqliteStore, _dump

    store = await SqliteStore(f"{folder}/routing-{agents_count}.db").open()
    try:
        agents = make_agents(agents_count, random.Random(2))
        await store.conn.executemany(
            "INSERT INTO agents (id, version, registered, data) VALUES (?, 1, 1, ?)",
            [(a.id, _dump(a)) for a in agents])
        await store.conn.executemany(
            "INSERT INTO agent_services (agent_id, service_id) VALUES (?, ?)",
            [(a.id, SERVICE) for a in agents])
        times = []
        for _ in range(3):
            async with store.unit_of_work() as uow:
                start = time.perf_counter()
                await uow.tasks.queued(SERVICE, 50)
                await uow.agents.members(SERVICE)
                times.append(time.perf_counter() - start)
        return min(times) * 1000
    finally:
        await store.close()


async def store_loads() -> dict[str, float | None]:
    """None when the store's internals changed under this measurement."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            return {f"dispatch_load_ms_{n}": round(await _store_load(n, folder), 2)
                    for n, _ in SIZES}
        except (ImportError, AttributeError, sqlite3.Error) as exc:
            print(f"routing: store load not measured ({type(exc).__name__}: {exc})")
            return {f"dispatch_load_ms_{n}": None for n, _ in SIZES}


def run() -> dict[str, Any]:
    return asyncio.run(run_async())


async def run_async() -> dict[str, Any]:
    small, large = (measure(a, t) for a, t in SIZES)
    growth = large["pick_ms"] / small["pick_ms"]
    return {
        "sizes": [small, large],
        "route_ms_500_5000": round(small["pick_ms"], 4),
        "route_ms_5000_50000": round(large["pick_ms"], 4),
        "route_growth": round(growth, 2),
        # 10x more agents and tasks: exponent 1 = linear, below 1 = sub-linear.
        "route_growth_exponent": round(math.log10(growth), 2),
        "next_tasks_ms_5000": round(small["next_tasks_ms"], 3),
        "next_tasks_ms_50000": round(large["next_tasks_ms"], 3),
        # Not part of the decision above, but paid before each one in the app: dispatch() loads
        # and decodes every member of the service from SQLite, under the store lock.
        **await store_loads(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
