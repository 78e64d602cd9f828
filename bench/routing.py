"""Routing benchmark: the time of one offer decision as ``dispatch()`` makes it, on SQLite.

One decision, in a unit of work: the queue head (``tasks.queued(service, 1)``), then
``bot.services.dispatch.choose_agents``: the longest-idle agents the availability index lists
(``agents.available``, as many as the task can ring plus the ones it tried) and ``pick_agents``
over them. The store holds 500 agents and 5,000 queued tasks, then 5,000 and 50,000; the figure
is the median decision (best of five rounds), and a sub-linear decision costs about the same
at both sizes. Between two timed decisions the head leaves the queue (as an offer takes it), so
the decisions go through the queue's varied heads.

The agents are a contact center under load: a fifth available, the rest ringing, connected,
in after-call work, RONA or off duty; a third of the tasks have been tried by a few agents.

``members_ms_*`` is the decision as it was before the index, for comparison: every member of
the service loaded and decoded, and ``pick_agents`` over all of them.
"""

from __future__ import annotations

import asyncio
import gc
import math
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.agent import Agent, Engagement, availability
from bot.domain.routing import pick_agents
from bot.domain.service import Catalog, Modality, Service
from bot.domain.task import Task, TaskState
from bot.services.context import Ctx
from bot.services.dispatch import choose_agents
from bot.storage.sqlite import SqliteStore

SIZES = ((500, 5_000), (5_000, 50_000))
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SERVICE = "bench"
MIX = (("available", 0.20), ("connected", 0.40), ("ringing", 0.10), ("acw", 0.15),
       ("rona", 0.05), ("off", 0.10))
DECISIONS = 200  # per round
ROUNDS = 5
MEMBER_LOADS = 3
TASKS_PER_INSERT = 1000


class _Clock:
    def now(self) -> datetime:
        return NOW


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


async def populate(store: SqliteStore, agents: list[Agent], tasks: list[Task],
                   catalog: Catalog) -> None:
    """Agents through the repository (their rows and index entries as the app writes them),
    tasks in bulk: multi-row inserts of the rows the repository would write."""
    from bot.storage.sqlite_repos import dump

    async with store.unit_of_work() as uow:
        for agent in agents:
            await uow.agents.add(agent)
            await uow.agents.set_availability(agent, availability(agent, catalog))
        names = ["id", "version", "data", *uow.tasks.columns(tasks[0])]
        row = "(" + ", ".join("?" * len(names)) + ")"
        for first in range(0, len(tasks), TASKS_PER_INSERT):
            chunk = tasks[first:first + TASKS_PER_INSERT]
            values = [v for task in chunk
                      for v in (task.id, 1, dump(task), *uow.tasks.columns(task).values())]
            await uow.execute(f"INSERT INTO tasks ({', '.join(names)}) VALUES "
                              + ", ".join([row] * len(chunk)), values)
        await uow.commit()


async def _decision_times(store: SqliteStore, catalog: Catalog, count: int) -> list[float]:
    times = []
    for _ in range(count):
        async with store.unit_of_work() as uow:
            ctx = Ctx(uow, _Clock(), catalog)
            start = time.perf_counter()
            [task] = await uow.tasks.queued(SERVICE, 1)
            await choose_agents(ctx, task)
            times.append(time.perf_counter() - start)
            task.state = TaskState.RINGING  # the offer takes the head (not timed)
            await uow.tasks.save(task)
            await uow.commit()
    return times


async def _members_times(store: SqliteStore, catalog: Catalog) -> list[float]:
    times = []
    for _ in range(MEMBER_LOADS):
        async with store.unit_of_work() as uow:
            start = time.perf_counter()
            [task] = await uow.tasks.queued(SERVICE, 1)
            pick_agents(task, await uow.agents.members(SERVICE), catalog, NOW)
            times.append(time.perf_counter() - start)
    return times


async def measure(agents_count: int, tasks_count: int, folder: str,
                  seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    catalog = Catalog(services={SERVICE: Service(id=SERVICE, name="Bench")})
    agents = make_agents(agents_count, rng)
    tasks = make_tasks(tasks_count, agents, rng)
    store = await SqliteStore(f"{folder}/routing-{agents_count}.db").open()
    try:
        started = time.perf_counter()
        await populate(store, agents, tasks, catalog)
        populate_s = time.perf_counter() - started
        del agents, tasks
        # Best of five medians, as timeit takes the best: the code's cost, less the
        # machine's other load.
        rounds = []
        for _ in range(ROUNDS):
            gc.collect()
            rounds.append(await _decision_times(store, catalog, DECISIONS))
        decide = min(rounds, key=statistics.median)
        members = await _members_times(store, catalog)
    finally:
        await store.close()
    return {
        "agents": agents_count,
        "tasks": tasks_count,
        "decision_ms": statistics.median(decide) * 1000,
        "decision_p99_ms": sorted(decide)[math.ceil(0.99 * len(decide)) - 1] * 1000,
        "members_ms": min(members) * 1000,
        "populate_s": round(populate_s, 2),
    }


def run() -> dict[str, Any]:
    return asyncio.run(run_async())


async def run_async() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        small, large = [await measure(a, t, folder) for a, t in SIZES]
    growth = large["decision_ms"] / small["decision_ms"]
    return {
        "sizes": [small, large],
        "route_ms_500_5000": round(small["decision_ms"], 4),
        "route_ms_5000_50000": round(large["decision_ms"], 4),
        "route_growth": round(growth, 2),
        # 10x more agents and tasks: exponent 1 = linear, below 1 = sub-linear.
        "route_growth_exponent": round(math.log10(growth), 2),
        # The same decision without the index (every member loaded), for comparison.
        "members_ms_500": round(small["members_ms"], 2),
        "members_ms_5000": round(large["members_ms"], 2),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
