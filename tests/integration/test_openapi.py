"""The OpenAPI document: valid OpenAPI 3.0, describes every Interact route the app registers,
and what a real chat sends matches it (bodies, statuses, WebSocket events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import OpenAPIV30SpecValidator

from bot.app import create_app
from bot.config import Settings
from bot.interact.api import PREFIX
from bot.interact.openapi import (
    Section,
    add_section,
    base_document,
    openapi_document,
    openapi_route,
)
from tests.builders import catalog
from tests.support.waiting import eventually
from tests.support.world import World, running_world

DOC = openapi_document()
INTERACT_PREFIXES = (f"{PREFIX}/", "/interact/")


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    root = {**schema, "components": DOC["components"]}
    validator = OAS30Validator(root, format_checker=oas30_format_checker)
    return [error.message for error in validator.iter_errors(instance)]


def check(method: str, template: str, status: int, body: Any) -> None:
    """The status is documented for the operation, and the body matches its schema."""
    responses = DOC["paths"][template][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {template} answered {status}"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    assert schema_errors(schema, body) == [], (template, status, body)


def test_the_document_is_valid_openapi_3_0() -> None:
    assert DOC["openapi"].startswith("3.0.")
    OpenAPIV30SpecValidator(DOC).validate()


def test_every_interact_route_is_described(tmp_path: Path) -> None:
    app = create_app(Settings(catalog=catalog(), db_path=str(tmp_path / "sb.db")))
    registered: set[tuple[str, str]] = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith(INTERACT_PREFIXES) and route.method != "HEAD":
            registered.add((route.method.lower(), path))
    assert ("options", f"{PREFIX}/{{tail}}") in registered  # the CORS preflight catch-all
    registered.discard(("options", f"{PREFIX}/{{tail}}"))
    [interact_tag] = [t for t in DOC["tags"] if t["name"] == "Interact"]
    assert "OPTIONS" in interact_tag["description"]
    documented = {(method, path) for path, item in DOC["paths"].items()
                  if path.startswith(INTERACT_PREFIXES) for method in item}
    assert registered == documented
    for method, path in documented:
        operation = DOC["paths"][path][method]
        for status in ("401", "403", "404"):
            if "{chat_id}" in path:
                assert status in operation["responses"], (method, path, status)


def test_sections_extend_the_document_without_overwriting() -> None:
    document = base_document()
    add_section(document, Section(tag="Tasks", description="External tasks.",
                                  paths={"/api/tasks/v1/tasks": {}},
                                  schemas={"Task": {"type": "object"}}))
    assert "Error" in document["components"]["schemas"]
    with pytest.raises(ValueError, match="Error"):
        add_section(document, Section(tag="Other", description="", paths={},
                                      schemas={"Error": {"type": "string"}}))


async def test_the_route_serves_the_document(
        aiohttp_client: Callable[[web.Application], Any]) -> None:
    app = web.Application()
    app.router.add_routes([openapi_route()])
    client: TestClient = await aiohttp_client(app)
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    assert await response.json() == DOC


async def test_the_app_serves_the_document(tmp_path: Path) -> None:
    async with running_world(catalog(), tmp_path) as world, \
            world.client.get(world.server.make_url("/api/openapi.json")) as response:
        assert response.status == 200
        assert (await response.json())["paths"].keys() == DOC["paths"].keys()


# -- what a real chat sends matches the document -------------------------------------------------

@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    services = catalog({"id": "sales", "name": "Sales"},
                       {"id": "mail", "name": "Mail", "modalities": ["email"]})
    async with running_world(services, tmp_path) as running:
        yield running


async def call(world: World, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with world.client.request(method, world.server.make_url(path), **kwargs) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


async def test_a_real_chat_matches_the_document(world: World) -> None:
    chats, messages, end = (f"{PREFIX}/chats", f"{PREFIX}/chats/{{chat_id}}/messages",
                            f"{PREFIX}/chats/{{chat_id}}/end")
    status, created = await call(world, "POST", chats, json={
        "service": "sales", "text": "Hello", "customer": {"name": "Jane", "params": {"a": "b"}}})
    check("post", chats, status, created)
    chat_path = f"{PREFIX}/chats/{created['chat_id']}"
    auth = {"Authorization": f"Bearer {created['token']}"}

    events: list[dict[str, Any]] = []
    ws_url = world.server.make_url(f"{chat_path}/ws?token={created['token']}")
    async with world.client.ws_connect(ws_url) as ws:

        async def until(kind: str) -> None:
            async with asyncio.timeout(10):
                while True:
                    events.append(await ws.receive_json())
                    if events[-1]["type"] == kind and (kind != "queued"
                                                       or "position" in events[-1]):
                        return

        await until("queued")  # the position snapshot, while no agent is ready
        agent = world.agent(1)
        await agent.register()
        [invitation] = await eventually(lambda: agent.buttons("accept"))
        await agent.accept(invitation)
        await until("accepted")
        status, body = await call(world, "POST", f"{chat_path}/messages", headers=auth,
                                  json={"text": "Can I get a quote?"})
        check("post", messages, status, body)
        await agent.say("Sure")
        await until("message")
        status, body = await call(world, "POST", f"{chat_path}/end", headers=auth)
        check("post", end, status, body)
        await until("ended")
        assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

    kinds = {e["type"] + ("+position" if "position" in e else "") for e in events}
    assert {"queued", "queued+position", "message", "accepted", "ended"} <= kinds
    event_schema = DOC["paths"][f"{PREFIX}/chats/{{chat_id}}/ws"]["get"]["responses"]["101"][
        "content"]["application/json"]["schema"]
    for event in events:
        assert schema_errors(event_schema, event) == [], event

    # Refusals: documented statuses, with the {"error": ...} body.
    refusals = [
        ("post", chats, {"data": b"{nope", "headers": {"Content-Type": "application/json"}}, 400),
        ("post", chats, {"json": {"service": "nowhere"}}, 404),
        ("post", chats, {"json": {"service": "mail"}}, 422),
        ("post", chats, {"json": {"service": "sales"},
                         "headers": {"Origin": "https://evil.example"}}, 403),
        ("post", chats, {"json": {"service": "sales", "text": "x" * 20_000}}, 413),
        ("post", messages, {"json": {"text": "hi"}}, 401),
        ("post", messages, {"json": {"text": "late"}, "headers": auth}, 409),
        ("post", end, {"headers": {"Authorization": "Bearer wrong"}}, 401),
    ]
    for method, template, kwargs, expected in refusals:
        path = template.replace("{chat_id}", created["chat_id"])
        status, body = await call(world, method.upper(), path, **kwargs)
        assert status == expected, (template, status, body)
        check(method, template, status, body)
    status, body = await call(world, "POST", f"{PREFIX}/chats/nope/end", headers=auth)
    check("post", end, status, body)
    assert status == 404
    async with world.client.get(world.server.make_url(f"{chat_path}/ws?token=wrong")) as resp:
        check("get", f"{PREFIX}/chats/{{chat_id}}/ws", resp.status, await resp.json())
