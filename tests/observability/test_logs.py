"""A whole chat's log: an access line per request, an event line per transition, with ids and
without a customer value at INFO or DEBUG."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.domain.events import Event
from bot.observability.access import access_middleware
from bot.services.context import Ctx
from tests.builders import catalog
from tests.observability.scene import SECRETS, Captured, Counted, whole_chat
from tests.support.world import running_world


@pytest.fixture
def captured(request: pytest.FixtureRequest) -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(getattr(request, "param", logging.INFO))
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


async def all_events(ctx: Ctx) -> list[Event]:
    return await ctx.uow.events.after(0, 10_000)


@pytest.mark.parametrize("captured", [logging.INFO, logging.DEBUG], indirect=True,
                         ids=["info", "debug"])
async def test_a_whole_chat_logs_every_request_and_transition(
        tmp_path: Path, captured: Captured) -> None:
    counted = Counted()
    async with running_world(catalog({"id": "sales"}), tmp_path) as world, \
            aiohttp.ClientSession(trace_configs=[counted.tracing()]) as client:
        chat = await whole_chat(world, client)
        events = await world.engine.read(all_events)
    entries = captured.entries()
    text = "\n".join(captured.lines)
    for secret in SECRETS:
        assert secret not in text, f"customer data in the logs: {secret!r}"

    # One access line per request, in the order answered, naming the route, not the path.
    access = [e for e in entries if e["logger"] == "bot.access"]
    assert sorted((e["method"], e["route"]) for e in access) == sorted(
        (method, route_of(path)) for method, path in counted.requests)
    assert all(isinstance(e["status"], int) and e["status"] < 400 for e in access), access
    assert all(isinstance(e["duration_ms"], int | float) for e in access)
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["request_id"]) for e in access)
    assert len({e["request_id"] for e in access}) == len(access)
    callers = {e["route"]: e["caller"] for e in access}
    assert callers["/api/messages"] == "teams"
    assert callers["/api/interact/v1/chats/{chat_id}/messages"] == "widget"
    assert chat.task_id and all(chat.task_id not in e["route"] for e in access)

    # One event line per stored event, with its ids.
    lines = [e for e in entries if e["logger"] == "bot.events"]
    assert [(e["event"], e.get("task_id"), e.get("session_id")) for e in lines] == [
        (e.name, e.task_id, e.session_id) for e in events]
    names = [e["event"] for e in lines]
    for name in ("agent.registered", "task.created", "offer.created", "offer.declined",
                 "offer.timed_out", "offer.accepted", "session.terminated", "acw.started",
                 "session.saved", "task.done"):
        assert name in names, name
    accepted = next(e for e in lines if e["event"] == "offer.accepted")
    assert accepted["agent_id"] == chat.accepted_by.aad  # the Entra object id
    assert accepted["service_id"] == "sales" and accepted["modality"] == "im"
    assert accepted["task_id"] == chat.task_id and accepted["result"] == "accepted"
    assert accepted["waited_ms"] >= 30_000 and accepted["attempt"] == 3
    timed_out = next(e for e in lines if e["event"] == "offer.timed_out")
    assert timed_out["result"] == "rona" and timed_out["rang_ms"] == 30_000
    if logging.getLogger().level == logging.DEBUG:  # and a line per outbound call that worked
        outbound = [e for e in entries if e["logger"] == "bot.outbound"]
        assert any(e["target"] == "connector" and e["status"] < 300 for e in outbound), outbound
    # Lines a request caused carry its request id.
    assert accepted.get("request_id") in {e["request_id"] for e in access}


def route_of(path: str) -> str:
    """The route template the app registers for a path this test requests."""
    if re.fullmatch(r"/api/interact/v1/chats/[^/]+/messages", path):
        return "/api/interact/v1/chats/{chat_id}/messages"
    return path


async def test_the_request_id_comes_from_the_caller(aiohttp_client: Any,
                                                    captured: Captured) -> None:
    async def hello(_request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application(middlewares=[access_middleware(None)])
    app.router.add_get("/things/{thing_id}", hello)
    client = await aiohttp_client(app)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    given = await client.get("/things/42", headers={"X-Request-Id": "abc-123"})
    traced = await client.get("/things/43", headers={
        "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    hostile = await client.get("/things/44", headers={"X-Request-Id": "x" * 65 + "\u2028"})
    missing = await client.get("/nowhere/45")
    assert given.headers["X-Request-Id"] == "abc-123"
    assert traced.headers["X-Request-Id"] == trace_id
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["X-Request-Id"])
    lines = [e for e in captured.entries() if e["logger"] == "bot.access"]
    assert [(e["route"], e["status"], e["request_id"], e["caller"]) for e in lines] == [
        ("/things/{thing_id}", 200, "abc-123", "anonymous"),
        ("/things/{thing_id}", 200, trace_id, "anonymous"),
        ("/things/{thing_id}", 200, hostile.headers["X-Request-Id"], "anonymous"),
        ("unmatched", 404, missing.headers["X-Request-Id"], "anonymous")]
