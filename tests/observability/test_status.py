"""GET /api/v1/status: the queue and agent states of a scripted scene, exactly; keys."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator, oas30_format_checker

from bot.config import parse_catalog
from bot.domain.service import Catalog
from bot.interact.openapi import openapi_document
from tests.support.cards import find_action
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually
from tests.support.world import World, running_world

API = "/api/interact/v1"
REPORTING_KEY, TASKS_KEY = "status-key-1", "tasks-key-1"
STATES = ("unregistered", "off_duty", "not_available", "rona", "ringing", "busy", "acw",
          "available")


def services() -> Catalog:
    def table(service_id: str, *members: int) -> dict[str, Any]:
        return {"id": service_id, "name": service_id.title(), "modalities": ["im", "external"],
                "members": [f"a{n}@example.com" for n in members]}

    def key(name: str, secret: str, scopes: list[str], *allowed: str) -> dict[str, Any]:
        return {"name": name, "sha256": hashlib.sha256(secret.encode()).hexdigest(),
                "scopes": scopes, "services": list(allowed)}

    return parse_catalog({
        "service": [table("sales", 1, 2, 3), table("support", 4, 5)],
        "api_key": [key("ops", REPORTING_KEY, ["reporting"], "sales"),
                    key("crm", TASKS_KEY, ["tasks"], "sales", "support")]}, "status.toml")


async def open_chat(world: World, service: str) -> str:
    async with world.client.post(world.server.make_url(f"{API}/chats"), json={
            "service": service, "text": "hello", "customer": {"name": "C"}}) as response:
        assert response.status == 201
        return str((await response.json())["chat_id"])


async def offered(agent: TeamsAgent, count: int = 1) -> dict[str, Any]:
    invitations = await eventually(lambda: agent.buttons("accept")[count - 1:] or None)
    return dict(invitations[0])


async def accept(agent: TeamsAgent, invitation: dict[str, Any]) -> str:
    action = find_action(invitation["card"], "accept")
    assert action is not None
    await agent.click("accept", action["data"], reply_to=invitation["id"])
    return str(action["data"]["session_id"])


async def status(world: World, key: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with world.client.get(world.server.make_url("/api/v1/status"),
                                headers=headers) as response:
        return response.status, await response.json()


def agents(**counts: int) -> dict[str, int]:
    return {state: counts.get(state, 0) for state in STATES}


async def test_status_reports_a_scripted_scene_exactly(tmp_path: Path) -> None:
    async with running_world(services(), tmp_path) as world:
        first, second = world.agent(1), world.agent(2)
        fourth = world.agent(4)
        for agent in (first, second, fourth):
            await agent.register()
        # Sales: one chat for each of its two agents; the first accepts, the second rings.
        await open_chat(world, "sales")
        await open_chat(world, "sales")
        ringing_first = await offered(first)
        await offered(second)
        await world.settle()
        await world.advance(10)
        await open_chat(world, "sales")  # nobody free: it waits in the queue
        await accept(first, ringing_first)
        # Support: its agent takes a chat and ends it: after-call work.
        await open_chat(world, "support")
        session = await accept(fourth, await offered(fourth))
        await fourth.click("terminate", {"session_id": session})
        await world.settle()

        code, body = await status(world)  # local mode: no key needed
        assert code == 200
        assert documented(body, "StatusAnswer") == []
        by_id = {s["id"]: s for s in body["services"]}
        assert by_id["sales"] == {
            "id": "sales",
            "queue": {"waiting": 2, "queued": 1, "ringing": 1, "oldest_wait_seconds": 10.0},
            "agents": agents(busy=1, ringing=1),
            "sessions": {"live": 1, "acw": 0}}
        assert by_id["support"] == {
            "id": "support",
            "queue": {"waiting": 0, "queued": 0, "ringing": 0, "oldest_wait_seconds": None},
            "agents": agents(acw=1),
            "sessions": {"live": 0, "acw": 1}}
        instance = body["instance"]
        assert instance["jobs_overdue"] == 0 and instance["outbound_queue"] == 0
        assert instance["version"] and instance["uptime_seconds"] >= 0

        # A key sees its own services only.
        code, body = await status(world, REPORTING_KEY)
        assert code == 200 and [s["id"] for s in body["services"]] == ["sales"]


async def test_status_wants_a_reporting_key_outside_local_mode(tmp_path: Path) -> None:
    async with running_world(services(), tmp_path, app_id="11111111-2222-3333-4444-555555555555",
                             app_password="secret", tenant_id="tenant") as world:
        code, body = await status(world)
        assert code == 401 and "error" in body
        code, _ = await status(world, "not-a-key")
        assert code == 401
        code, _ = await status(world, TASKS_KEY)
        assert code == 403
        code, body = await status(world, REPORTING_KEY)
        assert code == 200 and [s["id"] for s in body["services"]] == ["sales"]


def documented(body: Any, schema: str) -> list[str]:
    """What the OpenAPI document's schema finds wrong with `body`."""
    doc = openapi_document()
    validator = OAS30Validator({"$ref": f"#/components/schemas/{schema}",
                                "components": doc["components"]},
                               format_checker=oas30_format_checker)
    assert "/api/v1/status" in doc["paths"]
    return [error.message for error in validator.iter_errors(body)]
