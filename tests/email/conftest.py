"""A running Switchboard with its SMTP listener on a free port and a relay sink for replies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.config import parse_catalog
from bot.domain.service import Catalog
from bot.domain.task import Task
from bot.services.context import Ctx
from tests.email.mailer import Sink, free_port, smtp_sink
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually
from tests.support.world import World, running_world


def mail_catalog(**sales: Any) -> Catalog:
    members = [f"a{i}@example.com" for i in range(1, 4)]
    return parse_catalog({"service": [
        {"id": "sales", "name": "Sales", "modalities": ["im", "email", "external"],
         "members": members, "email": "sales@example.com", **sales},
        {"id": "support", "name": "Support", "modalities": ["email"], "members": members,
         "email": "Support@Example.com"},
    ]}, "test.toml")


@dataclass
class MailWorld:
    world: World
    smtp_port: int
    sink: Sink

    async def agent(self, n: int = 1) -> TeamsAgent:
        agent = self.world.agent(n)
        await agent.register()
        return agent

    async def tasks(self) -> list[Task]:
        async def load(ctx: Ctx) -> list[Task]:
            return await ctx.uow.tasks.live()
        return await self.world.engine.run(load)

    async def task(self, task_id: str) -> Task:
        async def load(ctx: Ctx) -> Task:
            return await ctx.task(task_id)
        return await self.world.engine.run(load)

    async def invitation(self, agent: TeamsAgent) -> dict[str, Any]:
        """The latest card with Accept: the invitation."""
        found = await eventually(lambda: agent.buttons("accept"))
        return dict(found[-1])


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with smtp_sink() as running:
        yield running


@pytest.fixture
async def mail_world(tmp_path: Path, sink: Sink) -> AsyncIterator[MailWorld]:
    port = free_port()
    async with running_world(mail_catalog(), tmp_path, smtp_port=port,
                             smtp_relay=f"127.0.0.1:{sink.port}") as world:
        yield MailWorld(world, port, sink)
