"""Helpers that drive the engine the way the channels do, for readable tests."""

from __future__ import annotations

from bot.domain.agent import Agent, AgentState, derive_state
from bot.domain.customer import Customer
from bot.domain.service import Modality
from bot.domain.session import Session
from bot.domain.task import Task
from bot.services import agents as agent_cases
from bot.services.context import Ctx
from bot.services.dispatch import create_task
from bot.services.engine import Engine
from tests.fakes import FakeClock


async def add_agent(engine: Engine, n: int, *, register: bool = True) -> str:
    """Install (and register) agent a<n>, a member of every test service."""
    agent_id = f"user-{n}"
    await engine.run(agent_cases.installed, agent_id, f"Agent {n}",
                     {"conversation_id": f"conv-{n}"})
    if register:
        await engine.run(agent_cases.register, agent_id, name=f"Agent {n}",
                         upn=f"a{n}@example.com", object_id=None)
    return agent_id


async def new_task(engine: Engine, service: str = "sales", *, name: str = "Jane Doe",
                   modality: Modality = Modality.IM, priority: int | None = None) -> Task:
    return await engine.run(create_task, service, modality, customer=Customer(name=name),
                            content={"text": "Hello"}, priority=priority)


async def load_task(engine: Engine, task_id: str) -> Task:
    async def get(ctx: Ctx) -> Task:
        return await ctx.task(task_id)
    return await engine.run(get)


async def load_agent(engine: Engine, agent_id: str) -> Agent:
    async def get(ctx: Ctx) -> Agent:
        agent = await ctx.uow.agents.get(agent_id)
        assert agent is not None
        return agent
    return await engine.run(get)


async def agent_state(engine: Engine, agent_id: str) -> AgentState:
    agent = await load_agent(engine, agent_id)
    return derive_state(agent, engine.catalog, engine.clock.now())


async def sessions_of(engine: Engine, task_id: str) -> list[Session]:
    async def get(ctx: Ctx) -> list[Session]:
        return await ctx.uow.sessions.for_task(task_id)
    return await engine.run(get)


async def task_of_session(engine: Engine, session_id: str) -> str:
    async def get(ctx: Ctx) -> str:
        session = await ctx.uow.sessions.get(session_id)
        assert session is not None
        return session.task_id
    return await engine.run(get)


async def ringing(engine: Engine, task_id: str) -> list[Session]:
    return [s for s in await sessions_of(engine, task_id) if s.phase.value == "ringing"]


async def first_of_two_rings(engine: Engine, clock: FakeClock, *,
                             name: str = "Jane Doe") -> tuple[str, str, Task, Session]:
    """Agents 1 and 2 (agent 1 idle longer) and a new task, which rings agent 1: (agent 1,
    agent 2, the task, its offer)."""
    one = await add_agent(engine, 1)
    clock.advance(1)
    two = await add_agent(engine, 2)
    task = await new_task(engine, name=name)
    [offer] = await ringing(engine, task.id)
    assert offer.agent_id == one
    return one, two, task, offer


async def advance(engine: Engine, clock: FakeClock, seconds: float) -> int:
    """Move time on and fire what became due, as the scheduler loop would."""
    clock.advance(seconds)
    fired = 0
    while True:
        batch = await engine.jobs.fire_due()
        if not batch:
            return fired
        fired += batch
