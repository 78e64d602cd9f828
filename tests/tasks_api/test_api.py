"""The external task API over HTTP: the whole flow with an agent in Teams, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cards import find_action
from tests.support.waiting import eventually
from tests.tasks_api.conftest import CRM_KEY, OPS_KEY, Api


def texts(card: Any) -> str:
    found: list[str] = []
    if isinstance(card, dict):
        if card.get("type") == "TextBlock":
            found.append(card["text"])
        if card.get("type") == "FactSet":
            found += [f"{f['title']}: {f['value']}" for f in card["facts"]]
        if card.get("type") == "Action.OpenUrl":
            found.append(f"{card['title']} -> {card['url']}")
        for value in card.values():
            found.append(texts(value))
    elif isinstance(card, list):
        found += [texts(item) for item in card]
    return "\n".join(t for t in found if t)


FULL = {
    "service": "sales",
    "title": "Call back about ticket 4711",
    "description": "The customer asked for a call before 5 pm.",
    "due": "2026-11-03T17:00:00+01:00",
    "link": "https://crm.example.com/tickets/4711",
    "customer": {"name": "Jane Doe", "email": "jane@example.com", "phone": "+41 44 000 00 00"},
    "context": {"TicketId": "4711"},
    "priority": 5,
}


async def test_create_accept_complete_wrap_up_conclude(api: Api) -> None:
    agent = api.world.agent(1)
    await agent.register()
    status, created, headers = await api.call("POST", "/api/v1/tasks", json=FULL)
    assert status == 201 and set(created) == {"task_id", "state"}
    task_id = created["task_id"]
    assert headers["Location"] == f"/api/v1/tasks/{task_id}"
    assert created["state"] == "ringing"  # an agent was free: offered at once
    status, seen = await api.get(task_id)
    assert status == 200 and seen["state"] == "ringing" and seen["result"] is None
    assert seen["service"] == "sales" and seen["accepted_at"] is None

    [invitation] = await eventually(lambda: agent.buttons("accept"))
    card = invitation["card"]
    shown = texts(card)
    assert "Call back about ticket 4711" in shown
    assert "The customer asked for a call before 5 pm." in shown
    assert "Due: Tue 3 Nov 2026, 16:00 UTC" in shown
    assert "Open link -> https://crm.example.com/tickets/4711" in shown
    # "context" fills the service's context URL ({param.TicketId}); the customer is named.
    assert "Open context -> https://crm.example.com/tickets/4711" in shown
    assert "Jane Doe" in shown
    accept = find_action(card, "accept")
    assert accept is not None
    session_id = accept["data"]["session_id"]

    accepted = await agent.click("accept", {"session_id": session_id}, reply_to=invitation["id"])
    complete = find_action(accepted, "terminate")
    assert complete is not None and complete["title"] == "Complete"
    assert "Call back about ticket 4711" in texts(accepted)
    assert "Open link -> https://crm.example.com/tickets/4711" in texts(accepted)
    status, seen = await api.get(task_id)
    assert seen["state"] == "connected" and seen["accepted_at"] is not None
    # DELETE after Accept: too late.
    status, refused, _ = await api.call("DELETE", f"/api/v1/tasks/{task_id}")
    assert status == 409 and "connected" in refused["error"]

    wrapup = await agent.click("terminate", {"session_id": session_id},
                               reply_to=invitation["id"])
    assert find_action(wrapup, "save_wrapup") is not None
    status, seen = await api.get(task_id)
    assert seen["state"] == "wrapup" and seen["completed_at"] is not None
    assert seen["ended_at"] is None

    await api.world.advance(21)  # the service's 20 s of after-call work
    status, seen = await api.get(task_id)
    assert seen["state"] == "done" and seen["result"] == "handled"
    assert seen["ended_at"] is not None
    concluded = await agent.click("save_wrapup", {"session_id": session_id, "tags": "callback"},
                                  reply_to=invitation["id"])
    assert find_action(concluded, "save_wrapup") is None and "callback" in texts(concluded)
    status, _, _ = await api.call("DELETE", f"/api/v1/tasks/{task_id}")
    assert status == 409


async def test_delete_before_accept_cancels(api: Api) -> None:
    agent = api.world.agent(1)
    await agent.register()
    _, created = await api.create()
    task_id = created["task_id"]
    [invitation] = await eventually(lambda: agent.buttons("accept"))
    status, cancelled, _ = await api.call("DELETE", f"/api/v1/tasks/{task_id}")
    assert status == 200
    assert cancelled["state"] == "cancelled" and cancelled["result"] == "cancelled"
    assert cancelled["ended_at"] is not None
    # The ringing invitation turns into "withdrawn" for the agent (it says why it ended).
    await eventually(lambda: find_action(api.world.connector.latest.get(
        invitation["id"], {}), "accept") is None and "Withdrawn" in texts(
        api.world.connector.latest[invitation["id"]]))
    status, again, _ = await api.call("DELETE", f"/api/v1/tasks/{task_id}")
    assert status == 200 and again["state"] == "cancelled"  # idempotent
    _, queued = await api.create()  # the agent is free again: this one rings
    status, _, _ = await api.call("DELETE", f"/api/v1/tasks/{queued['task_id']}")
    assert status == 200


async def test_a_queued_task_without_agents_can_be_read_and_cancelled(api: Api) -> None:
    status, created = await api.create(customer={"name": "Ann"})
    assert status == 201 and created["state"] == "queued"
    status, seen = await api.get(created["task_id"])
    assert seen["state"] == "queued"
    status, cancelled, _ = await api.call("DELETE", f"/api/v1/tasks/{created['task_id']}")
    assert status == 200 and cancelled["state"] == "cancelled"


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic Y3JtOmtleQ=="},
    {"Authorization": "Bearer not-a-key"},
    {"Authorization": f"Bearer {CRM_KEY}x"},
])
async def test_401_without_a_valid_key(api: Api, headers: dict[str, str]) -> None:
    for method, path in (("POST", "/api/v1/tasks"), ("GET", "/api/v1/tasks/x"),
                         ("DELETE", "/api/v1/tasks/x")):
        status, body, answer = await api.call(method, path, key=None, headers=headers,
                                              json={"service": "sales", "title": "x"})
        assert status == 401 and body["error"], (method, headers)
        assert answer["WWW-Authenticate"].startswith("Bearer")


async def test_403_for_a_service_the_key_does_not_name(api: Api) -> None:
    status, body = await api.create(service="billing")
    assert status == 403 and body["field"] == "service"
    status, body = await api.create(service="no-such-service")
    assert status == 403  # unknown or not named: the same answer
    status, created, _ = await api.call("POST", "/api/v1/tasks", key=OPS_KEY,
                                        json={"service": "billing", "title": "Invoice run"})
    assert status == 201
    status, body = await api.get(created["task_id"], key=CRM_KEY)
    assert status == 403
    status, body, _ = await api.call("DELETE", f"/api/v1/tasks/{created['task_id']}")
    assert status == 403
    status, body = await api.get(created["task_id"], key=OPS_KEY)
    assert status == 200 and body["service"] == "billing"


async def test_404_for_unknown_tasks_and_tasks_of_other_channels(api: Api) -> None:
    status, body = await api.get("0" * 32)
    assert status == 404 and body["error"]
    # A website chat's task id is not an external task.
    async with api.world.client.post(api.world.server.make_url("/api/interact/v1/chats"),
                                     json={"service": "sales", "text": "hi"}) as response:
        chat = await response.json()
    status, _ = await api.get(chat["chat_id"])
    assert status == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"title": "x"}, "service"),
    ({"service": "sales"}, "title"),
    ({"service": "sales", "title": "   "}, "title"),
    ({"service": "sales", "title": "x" * 301}, "title"),
    ({"service": "sales", "title": 42}, "title"),
    ({"service": "sales", "title": "x", "description": ["a"]}, "description"),
    ({"service": "sales", "title": "x", "due": "tomorrow"}, "due"),
    ({"service": "sales", "title": "x", "due": "2026-11-03T17:00:00"}, "due"),
    ({"service": "sales", "title": "x", "due": "0001-01-01T00:00:00+05:00"}, "due"),
    ({"service": "sales", "title": "x", "link": "javascript:alert(1)"}, "link"),
    ({"service": "sales", "title": "x", "link": "/relative"}, "link"),
    ({"service": "sales", "title": "x", "customer": "Jane"}, "customer"),
    ({"service": "sales", "title": "x", "customer": {"nmae": "Jane"}}, "customer.nmae"),
    ({"service": "sales", "title": "x", "customer": {"email": "x" * 321}}, "customer.email"),
    ({"service": "sales", "title": "x", "context": ["a"]}, "context"),
    ({"service": "sales", "title": "x", "context": {"Ticket Id": "1"}}, "context.Ticket Id"),
    ({"service": "sales", "title": "x", "context": {"TicketId": 4711}}, "context.TicketId"),
    ({"service": "sales", "title": "x", "context": {f"k{i}": "v" for i in range(51)}},
     "context"),
    ({"service": "sales", "title": "x", "priority": "high"}, "priority"),
    ({"service": "sales", "title": "x", "priority": True}, "priority"),
    ({"service": "sales", "title": "x", "priority": 1001}, "priority"),
    ({"service": "sales", "title": "x", "colour": "red"}, "colour"),
    # Found by schemathesis: a key with an empty name still gets its `field`.
    ({"service": "sales", "title": "x", "": 1}, "(a field with an empty name)"),
    ({"service": "sales", "title": "x", "customer": {"": "x"}}, "customer.(empty name)"),
])
async def test_422_names_the_field_and_the_reason(api: Api, body: dict[str, Any],
                                                  field: str) -> None:
    status, answer, _ = await api.call("POST", "/api/v1/tasks", json=body)
    assert status == 422, answer
    assert answer["field"] == field and answer["error"]


async def test_nulls_count_as_left_out(api: Api) -> None:
    status, _ = await api.create(description=None, due=None, link=None, customer=None,
                                 context=None, priority=None)
    assert status == 201


async def test_400_and_413_for_bodies_that_are_not_a_request(api: Api) -> None:
    for data in (b"{", b"[1, 2]", b"\xff\xfe"):
        status, body, _ = await api.call("POST", "/api/v1/tasks", data=data,
                                         headers={"Content-Type": "application/json"})
        assert status == 400 and body["error"]
    status, body, _ = await api.call("POST", "/api/v1/tasks",
                                     json={"service": "sales", "title": "x" * 70_000})
    assert status == 413


async def test_429_past_the_fair_use_cap(api: Api) -> None:
    created = []
    for n in range(3):  # max_open = 3 in this catalog
        status, body = await api.create(title=f"Task {n}")
        assert status == 201
        created.append(body["task_id"])
    status, body, headers = await api.call("POST", "/api/v1/tasks",
                                           json={"service": "sales", "title": "One more"})
    assert status == 429 and "3 open external tasks" in body["error"]
    assert int(headers["Retry-After"]) >= 1
    # Another service has its own cap; website chats do not count.
    status, _, _ = await api.call("POST", "/api/v1/tasks", key=OPS_KEY,
                                  json={"service": "billing", "title": "Elsewhere"})
    assert status == 201
    # A task that ends frees a place.
    await api.call("DELETE", f"/api/v1/tasks/{created[0]}")
    status, _ = await api.create(title="Now it fits")
    assert status == 201
