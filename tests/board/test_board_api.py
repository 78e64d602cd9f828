"""The board's HTTP API on a running app: who may see it, what bad input gets, the actions
reaching Teams through the Bot Connector stand-in, and the live stream across two instances."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.domain.agent import AgentState
from bot.domain.customer import Customer
from bot.domain.service import Catalog, Modality
from bot.services.dispatch import create_task
from tests.builders import catalog
from tests.fakes import FakeClock
from tests.standins.connector import ConnectorStandin
from tests.support.cards import find_action
from tests.support.waiting import eventually
from tests.support.world import World, running_world, serving

BOSS = {"Authorization": "Local boss@example.com"}
AGENT = {"Authorization": "Local a1@example.com"}
BOARD = "/api/board/v1"
IDLE = {state.value: 0 for state in AgentState}  # the picture names every state


def services() -> Catalog:
    return catalog({"id": "sales", "supervisors": ["boss@example.com"]},
                   {"id": "billing", "supervisors": ["someone@example.com"]})


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_world(services(), tmp_path) as running:
        yield running


async def call(world: World, method: str, path: str, *, headers: dict[str, str] | None = None,
               **kwargs: Any) -> tuple[int, Any]:
    async with world.client.request(method, world.base_url + path, headers=headers,
                                    **kwargs) as response:
        return response.status, await response.json()


async def new_task(world: World, name: str) -> str:
    task = await world.engine.run(create_task, "sales", Modality.IM,
                                  customer=Customer(name=name), content={"text": "Hello"})
    return task.id


async def test_who_may_see_the_board(world: World) -> None:
    # The tabs' local-mode dev sign-in: a member or supervisor of the services file.
    status, body = await call(world, "GET", BOARD)
    assert status == 401 and "local-mode sign-in" in body["error"]
    status, body = await call(world, "GET", BOARD, headers={"Authorization": "Bearer x"})
    assert status == 401
    status, body = await call(world, "GET", BOARD,
                              headers={"Authorization": "Local stranger@example.com"})
    assert status == 401 and set(body) == {"error"}
    status, body = await call(world, "GET", BOARD, headers=AGENT)
    assert (status, body) == (403, {"error": "You do not supervise any service."})
    status, body = await call(world, "GET", BOARD + "?service=billing", headers=BOSS)
    assert (status, body) == (403, {"error": "You do not supervise Billing."})
    status, body = await call(world, "GET", BOARD + "/stream", headers=AGENT)
    assert status == 403  # refused before any stream starts
    status, body = await call(world, "GET", BOARD, headers=BOSS)
    assert status == 200
    assert [s["id"] for s in body["services"]] == ["sales"]
    assert body["day_start"] == "2026-11-02T00:00:00+00:00"


async def test_the_local_sign_in_is_off_with_an_app_id(tmp_path: Path) -> None:
    async with running_world(services(), tmp_path, app_id="app-id",
                             public_host="bot.example.com") as world:
        status, _ = await call(world, "GET", BOARD, headers=BOSS)
        assert status == 401


@pytest.mark.parametrize(("query", "message"), [
    ("day_start=yesterday", "`day_start` must be an ISO 8601 date-time."),
    ("day_start=2026-11-02T00:00:00", "`day_start` needs a time zone"),
    ("day_start=2026-10-01T00:00:00Z", "`day_start` must lie within the last 48 hours."),
    ("day_start=2026-11-03T00:00:00Z", "`day_start` must lie within the last 48 hours."),
    ("service=" + "x" * 300, "`service` is not a valid id."),
])
async def test_bad_queries_are_400(world: World, query: str, message: str) -> None:
    status, body = await call(world, "GET", f"{BOARD}?{query}", headers=BOSS)
    assert status == 400
    assert body["error"].startswith(message)


async def test_bad_actions_are_4xx_with_a_message(world: World) -> None:
    task_id = await new_task(world, "Jane Doe")  # nobody registered: it waits
    for body, status in ((b"{", 400), (b"[]", 400), (b"{}", 400), (b'{"agent_id": 5}', 400),
                         (b'{"agent_id": "\\ud800"}', 400), (b"\xff", 400),
                         (b'{"agent_id": "' + b"x" * 5000 + b'"}', 413),
                         (b'{"agent_id": "' + b"x" * 300 + b'"}', 400),
                         (b'{"agent_id": "nobody"}', 404)):
        got, answer = await call(world, "POST", f"{BOARD}/tasks/{task_id}/offer", headers={
            **BOSS, "Content-Type": "application/json"}, data=body)
        assert got == status, (body, answer)
        assert answer["error"]
    status, answer = await call(world, "POST", f"{BOARD}/tasks/{'x' * 300}/withdraw",
                                headers=BOSS)
    assert (status, answer) == (400, {"error": "`task` is not a valid id."})
    status, answer = await call(world, "POST", f"{BOARD}/tasks/nope/withdraw", headers=BOSS)
    assert (status, answer) == (404, {"error": "There is no such task."})
    status, answer = await call(world, "POST", f"{BOARD}/tasks/{task_id}/withdraw",
                                headers=AGENT)
    assert (status, answer) == (403, {"error": "You do not supervise Sales."})
    status, _ = await call(world, "POST", f"{BOARD}/tasks/{task_id}/withdraw")
    assert status == 401
    status, answer = await call(world, "POST",
                                f"{BOARD}/services/sales/agents/nobody/reset-rona",
                                headers=BOSS)
    assert status == 404
    status, answer = await call(world, "POST", f"{BOARD}/services/nope/agents/x/off-duty",
                                headers=BOSS)
    assert (status, answer) == (404, {"error": "There is no service 'nope'."})
    status, answer = await call(world, "POST", f"{BOARD}/services/billing/agents/x/off-duty",
                                headers=BOSS)
    assert status == 403


async def test_offer_to_an_agent_sends_their_invitation_and_withdraw_cancels_it(
        world: World) -> None:
    one, two = world.agent(1), world.agent(2)
    await one.register()
    await two.register()
    await new_task(world, "Ann")  # to Agent 1 (idle as long as Agent 2, first by id)
    [(first_id, first)] = await eventually(lambda: one.cards_with("accept"))
    await one.press(first, "accept", reply_to=first_id)
    task_id = await new_task(world, "Bob")  # to Agent 2, who declines it
    [(card_id, card)] = await eventually(lambda: two.cards_with("decline"))
    await two.press(card, "decline", reply_to=card_id)
    await eventually(lambda: not two.cards_with("accept"))
    await world.settle()
    status, body = await call(world, "GET", BOARD, headers=BOSS)
    [sales] = body["services"]
    # Held back: Agent 1 may take it when free; Agent 2 is free but declined it just now.
    assert [(q["task_id"], q["customer"], q["state"]) for q in sales["queue"]] == [
        (task_id, "Bob", "queued")]
    states = {a["name"]: a["state"] for a in sales["agents"]}
    assert states == {"Agent 1": "busy", "Agent 2": "available"}
    agent_two = next(a["id"] for a in sales["agents"] if a["name"] == "Agent 2")
    agent_one = next(a["id"] for a in sales["agents"] if a["name"] == "Agent 1")

    status, body = await call(world, "POST", f"{BOARD}/tasks/{task_id}/offer", headers=BOSS,
                              json={"agent_id": agent_one})
    assert status == 409
    assert body["error"] == "Agent 1 cannot take this task now: they are busy."
    status, body = await call(world, "POST", f"{BOARD}/tasks/{task_id}/offer", headers=BOSS,
                              json={"agent_id": agent_two})
    assert (status, body) == (200, {"task": {"id": task_id, "state": "ringing",
                                             "service": "sales"}})
    # The invitation reaches Agent 2 through the Bot Connector, as any other does.
    [(invite_id, invite)] = await eventually(lambda: two.cards_with("accept"))
    assert invite_id != card_id
    assert "Bob" in json.dumps(invite)
    status, body = await call(world, "POST", f"{BOARD}/tasks/{task_id}/offer", headers=BOSS,
                              json={"agent_id": agent_two})
    assert status == 409 and "being offered already" in body["error"]

    status, body = await call(world, "POST", f"{BOARD}/tasks/{task_id}/withdraw", headers=BOSS)
    assert (status, body["task"]["state"]) == (200, "cancelled")
    withdrawn = await eventually(lambda: "Withdrawn" in json.dumps(two.card(invite_id))
                                 and two.card(invite_id))
    assert "A supervisor withdrew the task before it was accepted." in json.dumps(withdrawn)
    assert find_action(withdrawn, "accept") is None
    status, body = await call(world, "GET", BOARD, headers=BOSS)
    assert body["services"][0]["queue"] == []


async def test_reset_rona_and_off_duty_over_http(tmp_path: Path) -> None:
    catalog_ = catalog({"id": "sales", "supervisors": ["boss@example.com"],
                        "distribution": {"ring_timeout": "5s"}})
    async with running_world(catalog_, tmp_path) as world:
        one = world.agent(1)
        await one.register()
        task_id = await new_task(world, "Ann")
        await eventually(lambda: one.cards_with("accept"))
        await world.advance(6)  # no answer: RONA
        _, body = await call(world, "GET", BOARD, headers=BOSS)
        [agent] = body["services"][0]["agents"]
        assert agent["state"] == "rona"
        path = f"{BOARD}/services/sales/agents/{agent['id']}"
        status, body = await call(world, "POST", f"{path}/reset-rona", headers=BOSS)
        assert (status, body["agent"]["state"]) == (200, "ringing")  # offered Ann's task again
        status, body = await call(world, "POST", f"{path}/reset-rona", headers=BOSS)
        assert status == 409 and body["error"] == "Agent 1 is not in RONA."
        status, body = await call(world, "POST", f"{path}/off-duty", headers=BOSS)
        assert (status, body["agent"]) == (200, {"id": agent["id"], "state": "off_duty",
                                                  "profile": "Off Duty"})
        _, board = await call(world, "GET", BOARD, headers=BOSS)
        assert [q["task_id"] for q in board["services"][0]["queue"]] == [task_id]


# -- the live stream -------------------------------------------------------------------------


class EventStream:
    """A text/event-stream read as the page's fetch reader would."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float) -> dict[str, Any]:
        """The next `board` event's data; comments and other blocks are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            fields: dict[str, str] = {}
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no board event within {timeout}s")
                line = await asyncio.wait_for(self.response.content.readline(), left)
                if not line:
                    raise AssertionError("the stream ended")
                text = line.decode().rstrip("\n")
                if not text:
                    break
                if text.startswith(":"):
                    continue
                name, _, value = text.partition(": ")
                fields[name] = value
            if fields.get("event") == "board":
                data: dict[str, Any] = json.loads(fields["data"])
                return data


def queued(board: dict[str, Any]) -> list[str]:
    return [q["customer"] for s in board["services"] for q in s["queue"]]


async def test_a_queued_task_reaches_a_board_on_another_instance_within_a_second(
        tmp_path: Path) -> None:
    db, clock = tmp_path / "shared.db", FakeClock()
    async with ConnectorStandin() as connector, \
            serving(services(), db, connector=connector, clock=clock) as a, \
            serving(services(), db, connector=connector, clock=clock) as b, \
            b.client.get(f"{b.base_url}{BOARD}/stream", headers=BOSS) as on_b, \
            a.client.get(f"{a.base_url}{BOARD}/stream", headers=BOSS) as on_a:
        assert on_b.status == 200
        assert on_b.headers["Content-Type"] == "text/event-stream"
        stream_b, stream_a = EventStream(on_b), EventStream(on_a)
        assert queued(await stream_b.next(5)) == []
        assert queued(await stream_a.next(5)) == []
        started = time.monotonic()
        await a.engine.run(create_task, "sales", Modality.IM,
                           customer=Customer(name="Jane Doe"), content={"text": "Hi"})
        seen = await stream_b.next(1.0)  # committed on A, shown on B
        assert time.monotonic() - started < 1.0
        assert queued(seen) == ["Jane Doe"]
        assert seen["services"][0]["picture"]["queue_length"] == 1
        assert seen["services"][0]["figures"]["results"]["answered"] == 0  # kept from before
        assert queued(await stream_a.next(1.0)) == ["Jane Doe"]  # and on A itself


async def test_the_board_json_the_page_reads(world: World) -> None:
    one = world.agent(1)
    await one.register()
    await new_task(world, "Ann")
    [(card_id, card)] = await eventually(lambda: one.cards_with("accept"))
    await one.press(card, "accept", reply_to=card_id)
    await world.advance(3)
    task_id = await new_task(world, "Bob")
    await world.advance(2)
    status, body = await call(world, "GET", BOARD + "?day_start=2026-11-02T01:00:00%2B01:00",
                              headers=BOSS)
    assert status == 200
    assert body["now"] == "2026-11-02T09:00:05+00:00"
    assert body["day_start"] == "2026-11-02T01:00:00+01:00"
    [sales] = body["services"]
    assert sales["picture"] == {"queue_length": 1, "oldest_wait_seconds": 2.0,
                                "agents_by_state": {**IDLE, "busy": 1}, "sessions_live": 1,
                                "sessions_in_acw": 0}
    assert sales["queue"] == [{"task_id": task_id, "customer": "Bob", "modality": "im",
                               "state": "queued", "priority": 0,
                               "queued_at": "2026-11-02T09:00:03+00:00", "waiting_seconds": 2.0,
                               "call_flow": ["sales"], "ringing": []}]
    [agent] = sales["agents"]
    assert agent == {"id": agent["id"], "name": "Agent 1", "state": "busy",
                     "since": "2026-11-02T09:00:00+00:00", "in_state_seconds": 5.0,
                     "paused": False, "rona_until": None, "sessions": 1}
    [live] = sales["sessions"]
    assert live == {"id": live["id"], "task_id": live["task_id"], "agent_id": agent["id"],
                    "agent": "Agent 1", "customer": "Ann", "modality": "im",
                    "phase": "connected", "since": "2026-11-02T09:00:00+00:00"}
    figures = sales["figures"]
    assert figures["threshold_seconds"] == 20.0
    assert (figures["service_level"], figures["answered_within"]) == (1.0, 1)
    assert figures["results"] == {"answered": 1, "cancelled": 0, "expired": 0, "waiting": 0}
    # Hours in the zone of `day_start`: the page's own midnight to now.
    assert [h["start"] for h in figures["hours"]] == [
        f"2026-11-02T{h:02d}:00:00+01:00" for h in range(1, 11)]
    assert figures["hours"][-1] == {"start": "2026-11-02T10:00:00+01:00", "answered": 1,
                                    "cancelled": 0, "expired": 0, "waiting": 0}
    assert figures["waits"][0] == {"up_to_seconds": 10, "answered": 1, "unanswered": 0}
    assert figures["waits"][-1]["up_to_seconds"] is None
    assert figures["partial"] is False
