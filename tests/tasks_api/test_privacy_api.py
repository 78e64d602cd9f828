"""Enrich a live task (PATCH), erase and export a customer's data: over HTTP, with Teams."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import SETTINGS
from bot.config import ConfigError, parse_catalog
from bot.domain.service import Catalog
from bot.services.context import Ctx
from tests.support.cards import find_action
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually
from tests.support.world import World, running_world
from tests.tasks_api.conftest import CRM_KEY, Api
from tests.tasks_api.test_api import texts

PRIVACY_KEY = "privacy-key-0123456789-abcdefghijklmnopqrstuvwx"
A_KEY, B_KEY = "a-key-0123456789-abcdefghijklmnopqrstuvwxyz", "b-key-0123456789-abcdefghijklmnopqrs"
REPORT_KEY = "report-key-0123456789-abcdefghijklmnopqrstuv"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def privacy_catalog() -> Catalog:
    members = [f"a{i}@example.com" for i in range(1, 4)]

    def service(sid: str, store: bool) -> dict[str, Any]:
        return {"id": sid, "name": sid.upper(), "modalities": ["im", "external"],
                "members": members, "acw": {"duration": "0s"},
                "context": {"store_data": store,
                            "url": "https://crm.example.com/t/{param.TicketId}"}}

    return parse_catalog({
        "service": [service("a", True), service("b", False), service("c", True)],
        "api_key": [
            {"name": "crm", "sha256": digest(CRM_KEY), "services": ["a"]},
            {"name": "b", "sha256": digest(B_KEY), "services": ["b"], "scopes": ["tasks"]},
            {"name": "a", "sha256": digest(A_KEY), "services": ["a", "c"]},
            {"name": "dpo", "sha256": digest(PRIVACY_KEY), "scopes": ["privacy"]},
            {"name": "bi", "sha256": digest(REPORT_KEY), "services": ["a"],
             "scopes": ["reporting"]},
        ],
    }, "test.toml")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_world(privacy_catalog(), tmp_path) as world:
        yield Api(world)


async def accept(agent: TeamsAgent) -> tuple[str, str]:
    """Accept the agent's invitation: (session id, card id)."""
    [invitation] = await eventually(lambda: agent.buttons("accept"))
    action = find_action(invitation["card"], "accept")
    assert action is not None
    session_id = action["data"]["session_id"]
    await agent.click("accept", {"session_id": session_id}, reply_to=invitation["id"])
    return session_id, invitation["id"]


def card(world: World, card_id: str) -> Any:
    return world.connector.latest[card_id]


async def events(world: World) -> list[dict[str, Any]]:
    async def read(ctx: Ctx) -> list[dict[str, Any]]:
        return [{"name": e.name, "task_id": e.task_id, "data": e.data}
                for e in await ctx.uow.events.after(0, 10_000)]
    return await world.engine.run(read)


# -- scopes -------------------------------------------------------------------------------------

async def test_scopes_open_only_their_api(api: Api) -> None:
    body = {"customer": {"email": "x@example.org"}}
    status, _, _ = await api.call("POST", "/api/v1/privacy/erase", json=body, key=None)
    assert status == 401
    for key in (CRM_KEY, B_KEY, REPORT_KEY):  # default scopes, tasks, reporting: no privacy
        status, refused, _ = await api.call("POST", "/api/v1/privacy/erase", json=body, key=key)
        assert status == 403 and "privacy" in refused["error"]
        status, _, _ = await api.call("POST", "/api/v1/privacy/export", json=body, key=key)
        assert status == 403
    status, _, _ = await api.call("POST", "/api/v1/tasks", key=PRIVACY_KEY,
                                  json={"service": "a", "title": "t"})
    assert status == 403
    status, _, _ = await api.call("POST", "/api/v1/tasks", key=REPORT_KEY,
                                  json={"service": "a", "title": "t"})
    assert status == 403
    status, _, _ = await api.call("GET", "/api/v1/sessions", key=B_KEY)
    assert status == 403
    status, _, _ = await api.call("GET", "/api/v1/sessions", key=REPORT_KEY)
    assert status == 200
    status, _, _ = await api.call("GET", "/api/v1/sessions", key=CRM_KEY)  # default: both
    assert status == 200
    status, refused, _ = await api.call("POST", "/api/v1/privacy/export", key=PRIVACY_KEY,
                                        json={"customer": {}})
    assert status == 422 and refused["field"] == "customer"


# -- PATCH --------------------------------------------------------------------------------------

async def test_patch_adds_and_overwrites_and_the_accepted_card_follows(api: Api) -> None:
    agent = api.world.agent(1)
    await agent.register()
    status, created, _ = await api.call("POST", "/api/v1/tasks", json={
        "service": "a", "title": "Call back", "customer": {"name": "Jane Doe"},
        "context": {"TicketId": "4711"}})
    assert status == 201
    task_id = created["task_id"]
    _, card_id = await accept(agent)
    assert "Jane Doe" in texts(card(api.world, card_id))

    status, patched, _ = await api.call("PATCH", f"/api/v1/tasks/{task_id}", json={
        "customer": {"name": "Janet Roe", "email": "janet@example.org"},
        "context": {"TicketId": "4712", "Gender": "female"}})
    assert status == 200, patched
    assert patched["context"] == {"TicketId": "4712", "Gender": "female"}
    assert patched["customer"] == {"name": "Janet Roe", "email": "janet@example.org",
                                   "phone": ""}
    # The accepted card is rendered again from the new values (its card job, via the limiter):
    # its header names the customer.
    await eventually(lambda: "Janet Roe" in texts(card(api.world, card_id)))
    assert "Jane Doe" not in texts(card(api.world, card_id))
    assert find_action(card(api.world, card_id), "terminate") is not None  # still accepted

    status, refused, _ = await api.call("PATCH", f"/api/v1/tasks/{task_id}",
                                        json={"context": {"bad name!": "x"}})
    assert status == 422 and refused["field"] == "context.bad name!"
    status, refused, _ = await api.call("PATCH", f"/api/v1/tasks/{task_id}",
                                        json={"customer": {"nick": "x"}})
    assert status == 422 and refused["field"] == "customer.nick"
    status, refused, _ = await api.call("PATCH", f"/api/v1/tasks/{task_id}", json={})
    assert status == 422
    status, _, _ = await api.call("PATCH", f"/api/v1/tasks/{task_id}", key=B_KEY,
                                  json={"context": {"X": "1"}})
    assert status == 403
    status, _, _ = await api.call("PATCH", "/api/v1/tasks/nope", json={"context": {"X": "1"}})
    assert status == 404

    await agent.click("terminate", {"session_id": (await accept_session(api, task_id))},
                      reply_to=card_id)
    status, refused, _ = await api.call("PATCH", f"/api/v1/tasks/{task_id}",
                                        json={"context": {"X": "1"}})
    assert status == 409
    assert "Janet" not in json.dumps(await events(api.world))


async def accept_session(api: Api, task_id: str) -> str:
    async def read(ctx: Ctx) -> str:
        task = await ctx.task(task_id)
        assert task.session_id is not None
        return task.session_id
    return await api.world.engine.run(read)


# -- the seed-000 transfer table, end to end ----------------------------------------------------

async def test_seed_transfer_table_through_the_http_apis(api: Api) -> None:
    """A (stores) -> B (does not; adds Gender, overwrites the ticket) -> C (stores)."""
    agents = [api.world.agent(n) for n in (1, 2, 3)]
    for agent in agents:
        await agent.register()
    status, created, _ = await api.call("POST", "/api/v1/tasks", json={
        "service": "a", "title": "Ticket", "customer": {"name": "John Doe"},
        "context": {"SpokenLanguage": "German", "TicketId": "#1111"}})
    assert status == 201
    task_id = created["task_id"]

    def invited() -> TeamsAgent | None:  # an invitation still shows Accept; an accepted card not
        return next((a for a in agents if a.buttons("accept")), None)

    for service, target in [("a", "b"), ("b", "c"), ("c", None)]:
        holder = await eventually(invited)
        session_id, card_id = await accept(holder)
        if service == "b":  # B's CRM adds Gender and overwrites the ticket
            status, _, _ = await api.call("PATCH", f"/api/v1/tasks/{task_id}", key=B_KEY,
                                          json={"context": {"Gender": "Male",
                                                            "TicketId": "#3151"}})
            assert status == 200
        if target is None:
            await holder.click("terminate", {"session_id": session_id}, reply_to=card_id)
        else:
            await holder.click("transfer", {"session_id": session_id,
                                            "target_service": target}, reply_to=card_id)

    status, found, _ = await api.call("POST", "/api/v1/privacy/export", key=PRIVACY_KEY,
                                      json={"customer": {"name": "John Doe"}})
    assert status == 200, found
    [task] = found["tasks"]
    assert task["services"] == ["a", "b", "c"]
    stored = {s["service"]: s["customer"] and {"Customer Name": s["customer"]["name"],
                                               **s["customer"]["context"]}
              for s in task["sessions"] if s["result"] == "accepted"}
    assert stored == {
        "a": {"Customer Name": "John Doe", "SpokenLanguage": "German", "TicketId": "#1111"},
        "b": None,  # not stored
        "c": {"Customer Name": "John Doe", "SpokenLanguage": "German", "Gender": "Male",
              "TicketId": "#3151"},
    }



# -- erase and export ---------------------------------------------------------------------------

async def open_chat(api: Api, service: str, name: str, email: str, text: str) -> dict[str, Any]:
    async with api.world.client.post(api.world.server.make_url("/api/interact/v1/chats"), json={
            "service": service, "customer": {"name": name, "email": email},
            "text": text}) as response:
        assert response.status == 201
        opened: dict[str, Any] = await response.json()
        return opened


async def chat_rows(api: Api, chat: dict[str, Any]) -> list[dict[str, Any]]:
    async def read(ctx: Ctx) -> list[dict[str, Any]]:
        return [{"seq": m.seq, "kind": m.kind.value, "text": m.text, "data": m.data}
                for m in await ctx.uow.messages.after(chat["chat_id"], 0, 100)]
    return await api.world.engine.run(read)


async def test_erase_removes_a_customer_from_concluded_and_live_tasks_only(api: Api) -> None:
    agent = api.world.agent(1)
    await agent.register()
    # A concluded chat in a service that stores context: kept for 30 days...
    first = await open_chat(api, "a", "Erin Erasure", "erin@example.org", "my cat is sick")
    session_id, card_id = await accept(agent)
    await agent.click("terminate", {"session_id": session_id}, reply_to=card_id)
    # ...a live chat of the same customer (by email), waiting in the queue...
    live = await open_chat(api, "a", "E.", "ERIN@example.org", "hello again, the cat")
    # ...and another customer, untouched.
    other = await open_chat(api, "c", "Olga Other", "olga@example.org", "my dog is fine")

    status, found, _ = await api.call("POST", "/api/v1/privacy/export", key=PRIVACY_KEY,
                                      json={"customer": {"email": "erin@example.org"}})
    assert status == 200
    assert sorted(t["task_id"] for t in found["tasks"]) == sorted(
        [first["chat_id"], live["chat_id"]])
    stored = {t["task_id"]: t for t in found["tasks"]}
    assert [m["text"] for m in stored[first["chat_id"]]["messages"]] == ["my cat is sick"]
    assert stored[live["chat_id"]]["customer"]["email"] == "ERIN@example.org"
    assert stored[live["chat_id"]]["customer"]["verified"] is False  # typed into the widget

    status, erased, _ = await api.call("POST", "/api/v1/privacy/erase", key=PRIVACY_KEY,
                                       json={"customer": {"email": "erin@example.org"}})
    assert status == 200 and erased == {"tasks": 2, "messages": 2}

    status, found, _ = await api.call("POST", "/api/v1/privacy/export", key=PRIVACY_KEY,
                                      json={"customer": {"email": "erin@example.org",
                                                         "name": "Erin Erasure"}})
    assert status == 200 and found == {"tasks": []}
    # The live chat ended with a system message the widget shows; the customer's words are gone.
    rows = await chat_rows(api, live)
    assert rows[-1]["kind"] == "ended" and rows[-1]["data"] == {"by": "privacy"}
    assert all(r["kind"] != "message" for r in rows)
    assert all(r["kind"] != "message" for r in await chat_rows(api, first))
    # The other customer is all there.
    status, found, _ = await api.call("POST", "/api/v1/privacy/export", key=PRIVACY_KEY,
                                      json={"customer": {"email": "olga@example.org"}})
    [kept] = found["tasks"]
    assert kept["task_id"] == other["chat_id"] and kept["customer"]["name"] == "Olga Other"
    assert [m["text"] for m in kept["messages"]] == ["my dog is fine"]
    # The record of the erasure says how much, never whom.
    logged = await events(api.world)
    [record] = [e for e in logged if e["name"] == "privacy.erased"]
    assert record["data"] == {"tasks": 2, "messages": 2} and record["task_id"] is None
    dumped = json.dumps(logged).lower()
    assert "erin" not in dumped and "cat" not in dumped
    # Nothing of Erin in any table of the database file; Olga is there.
    everything = every_row(Path(api.world.app[SETTINGS].db_path))
    assert "erin" not in everything and "sick" not in everything and "again" not in everything
    assert "olga" in everything


def every_row(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(repr(row) for table in tables
                         for row in conn.execute(f'SELECT * FROM "{table}"')).lower()
    finally:
        conn.close()


def test_scopes_in_the_services_file() -> None:
    base = {"service": [{"id": "a", "modalities": ["external"]}]}
    keys = parse_catalog({**base, "api_key": [
        {"name": "old", "sha256": digest("k1"), "services": ["a"]},
        {"name": "dpo", "sha256": digest("k2"), "scopes": ["privacy"]}]}, "t.toml").api_keys
    assert [k.scopes for k in keys] == [("tasks", "reporting"), ("privacy",)]
    assert keys[1].services == ()
    for bad, problem in (({"scopes": ["admin"]}, "unknown scope"), ({"scopes": []}, "at least"),
                         ({"scopes": ["tasks"], "services": []}, "at least one service")):
        with pytest.raises(ConfigError, match=problem):
            parse_catalog({**base, "api_key": [
                {"name": "x", "sha256": digest("k3"), "services": ["a"], **bad}]}, "t.toml")
