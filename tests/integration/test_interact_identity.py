"""Website chats pass context and a signed-in identity; an unsigned name is unverified."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, parse_catalog
from bot.dialogs import views
from bot.domain.service import Catalog
from bot.interact.identity import sign
from bot.services.context import Ctx
from tests.support.waiting import eventually
from tests.support.world import World, running_world
from tests.tasks_api.test_api import texts

SECRET = "s3cret-of-the-website-0123456789abcdef"


def identity_catalog() -> Catalog:
    return parse_catalog({"service": [{
        "id": "sales", "name": "Sales", "members": ["a1@example.com"],
        "interact": {"identity_key": "SALES_IDENTITY_KEY"},
        "context": {"url": "https://crm.example.com/c/{param.CartId}"}}]},
        "test.toml", {"SALES_IDENTITY_KEY": SECRET})


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(identity_catalog(), tmp_path) as running:
        yield running


async def open_chat(world: World, body: dict[str, Any]) -> tuple[int, Any]:
    async with world.client.post(world.server.make_url("/api/interact/v1/chats"),
                                 json={"service": "sales", "text": "hi", **body}) as response:
        return response.status, await response.json()


def signed(name: str, email: str, exp: int, secret: str = SECRET,
           service: str = "sales") -> dict[str, Any]:
    return {"name": name, "email": email, "exp": exp,
            "sig": sign(secret, service, name, email, exp)}


async def test_a_signed_identity_names_the_customer_on_the_invitation(world: World) -> None:
    agent = world.agent(1)
    await agent.register()
    exp = int(world.clock.now().timestamp()) + 600
    status, opened = await open_chat(world, {
        "identity": signed("Greta Signed", "greta@example.org", exp),
        "customer": {"name": "Someone Else"}, "context": {"CartId": "C-77"}})
    assert status == 201 and opened["visitor"] == "Greta Signed"
    [invitation] = await eventually(lambda: agent.buttons("accept"))
    shown = texts(invitation["card"])
    assert "Greta Signed" in shown and "Someone Else" not in shown
    assert "Open context -> https://crm.example.com/c/C-77" in shown
    session = await only_session(world, opened["chat_id"])
    assert session.customer is not None and session.customer.email == "greta@example.org"
    assert views.header(session).customer_unverified is False


@pytest.mark.parametrize("change", [
    {"sig": "0" * 64},  # forged
    {"name": "Mallory"},  # signed for another name
    {"exp": "later"},  # malformed: 400
    {"exp": None},  # exp is required
    {"secret": "another-secret-of-another-site-012345"},
    {"service": "support"},  # signed for another service
    {"expired": True},
    {"too_far": True},
])
async def test_a_bad_signature_is_refused(world: World, change: dict[str, Any]) -> None:
    now = int(world.clock.now().timestamp())
    exp = now - 1 if change.get("expired") else now + 90_000 if change.get("too_far") \
        else now + 600
    ident = signed("Greta", "greta@example.org", exp,
                   secret=change.get("secret", SECRET), service=change.get("service", "sales"))
    for key in ("sig", "name", "exp"):
        if key in change:
            ident[key] = change[key]
    status, refused = await open_chat(world, {"identity": ident})
    malformed = "exp" in change
    assert status == (400 if malformed else 401), refused
    assert "error" in refused


async def test_an_unsigned_name_is_marked_unverified(world: World) -> None:
    status, opened = await open_chat(world, {"customer": {"name": "Claimed Name"}})
    assert status == 201 and opened["visitor"] == "Claimed Name"
    task = await load(world, opened["chat_id"])
    assert task.customer.unverified is True
    status, anonymous = await open_chat(world, {})
    assert (await load(world, anonymous["chat_id"])).customer.unverified is False


async def test_context_is_capped(world: World) -> None:
    status, _ = await open_chat(world, {"context": {f"K{i}": "v" for i in range(21)}})
    assert status == 400
    status, _ = await open_chat(world, {"context": {"K": "v" * 257}})
    assert status == 400
    status, _ = await open_chat(world, {"context": {"K": 5}})
    assert status == 400
    status, _ = await open_chat(world, {"context": {"bad name": "v"}})
    assert status == 400


def test_identity_key_needs_a_long_secret_in_the_environment() -> None:
    table = {"service": [{"id": "sales", "interact": {"identity_key": "MISSING"}}]}
    with pytest.raises(ConfigError, match="identity_key"):
        parse_catalog(table, "test.toml", {})
    with pytest.raises(ConfigError, match="identity_key"):
        parse_catalog(table, "test.toml", {"MISSING": "short"})


async def load(world: World, task_id: str) -> Any:
    async def read(ctx: Ctx) -> Any:
        return await ctx.task(task_id)
    return await world.engine.run(read)


async def only_session(world: World, task_id: str) -> Any:
    async def read(ctx: Ctx) -> Any:
        [session] = await ctx.uow.sessions.for_task(task_id)
        return session
    return await world.engine.run(read)
