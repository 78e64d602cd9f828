"""A running Switchboard with API keys in its services file, and a client for the task API."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.config import parse_catalog
from bot.domain.service import Catalog
from tests.support.world import World, running_world

CRM_KEY = "crm-key-0123456789-abcdefghijklmnopqrstuvwxyz"
OPS_KEY = "ops-key-9876543210-zyxwvutsrqponmlkjihgfedcba"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tasks_catalog(max_open: int = 100) -> Catalog:
    members = [f"a{i}@example.com" for i in range(1, 4)]
    return parse_catalog({
        "service": [
            {"id": "sales", "name": "Sales", "modalities": ["im", "external"],
             "members": members, "external": {"max_open": max_open},
             "context": {"url": "https://crm.example.com/tickets/{param.TicketId}"}},
            {"id": "billing", "name": "Billing", "modalities": ["external"],
             "members": members},
        ],
        "api_key": [
            {"name": "crm", "sha256": digest(CRM_KEY), "services": ["sales"]},
            {"name": "ops", "sha256": digest(OPS_KEY).upper(), "services": ["billing", "sales"]},
        ],
    }, "test.toml")


@dataclass
class Api:
    world: World

    async def call(self, method: str, path: str, *, key: str | None = CRM_KEY,
                   **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        async with self.world.client.request(method, self.world.server.make_url(path),
                                             headers=headers, **kwargs) as response:
            assert response.content_type == "application/json", await response.text()
            return response.status, await response.json(), dict(response.headers)

    async def create(self, **body: Any) -> tuple[int, Any]:
        status, data, _ = await self.call("POST", "/api/v1/tasks",
                                          json={"service": "sales", "title": "Call back",
                                                **body})
        return status, data

    async def get(self, task_id: str, key: str = CRM_KEY) -> tuple[int, Any]:
        status, data, _ = await self.call("GET", f"/api/v1/tasks/{task_id}", key=key)
        return status, data


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_world(tasks_catalog(max_open=3), tmp_path) as world:
        yield Api(world)
