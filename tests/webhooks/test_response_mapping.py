"""A ringing web request's JSON answer fills parameters (`[service.web_request.response]`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.config import ConfigError
from bot.domain.customer import Customer
from bot.domain.service import Modality
from bot.domain.webhooks.model import Trigger, WebRequest
from bot.services.context import Ctx
from bot.services.dispatch import create_task
from bot.webhooks.sender import mapped
from bot.webhooks.settings import parse_path
from tests.fakes import FakeClock
from tests.scenario import add_agent, sessions_of
from tests.webhooks.harness import drain, running, services

ANSWER = {"id": "CRM-9", "customer": {"tier": "gold", "vip": True, "score": 4.5},
          "items": [{"id": 7}], "nested": {"x": 1}}


@pytest.fixture
async def crm() -> AsyncIterator[str]:
    async def lookup(request: web.Request) -> web.Response:
        return web.json_response(ANSWER)

    app = web.Application()
    app.router.add_get("/lookup/{task}", lookup)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def test_paths_are_a_small_jsonpath_subset() -> None:
    assert parse_path("$.id") == ("id",)
    assert parse_path("$.customer.tier") == ("customer", "tier")
    assert parse_path("$.items[0].id") == ("items", 0, "id")
    for bad in ("$", "id", "$..id", "$.items[*]", "$['id']", "$.a b", "$.items[-1]"):
        assert parse_path(bad) is None, bad


def test_mapped_takes_scalars_only() -> None:
    template = WebRequest(on=Trigger.RINGING, method="GET", url="https://x", response_params=(
        ("CrmId", ("id",)), ("Tier", ("customer", "tier")), ("Vip", ("customer", "vip")),
        ("Score", ("customer", "score")), ("First", ("items", 0, "id")),
        ("Missing", ("items", 3, "id")), ("Object", ("nested",)), ("Wrong", ("id", 0))))
    assert mapped(template, ANSWER) == {"CrmId": "CRM-9", "Tier": "gold", "Vip": "true",
                                        "Score": "4.5", "First": "7"}
    assert mapped(template, "not an object") == {}
    assert mapped(template, None) == {}


@pytest.mark.parametrize(("response", "problem"), [
    ({"params": {"CrmId": "id"}}, "is not a path"),
    ({"params": {"bad name": "$.id"}}, "not a parameter name"),
    ({"fields": {}}, "must be a table"),
])
def test_bad_mappings_are_refused_at_load(response: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        services({"on": "ringing", "method": "GET", "url": "https://crm.example.com/x",
                  "response": response})


def test_only_a_ringing_request_maps_its_answer() -> None:
    with pytest.raises(ConfigError, match="only a ringing request"):
        services({"on": "accepted", "url": "https://crm.example.com/x",
                  "response": {"params": {"CrmId": "$.id"}}})


async def test_a_ringing_answer_fills_the_live_tasks_parameters(
        tmp_path: Path, clock: FakeClock, crm: str) -> None:
    catalog = services({"on": "ringing", "method": "GET", "url": crm + "/lookup/{task.id}",
                        "response": {"params": {"CrmId": "$.id", "Tier": "$.customer.tier",
                                                "TicketId": "$.items[0].id"}}})
    async with running(tmp_path / "sb.db", clock, catalog) as engine:
        await add_agent(engine, 1)
        task = await engine.run(create_task, "sales", Modality.IM, customer=Customer(
            name="Jane Doe", params={"TicketId": "4711", "Lang": "de"}))
        await drain(engine)

        async def read(ctx: Ctx) -> dict[str, str]:
            return dict((await ctx.task(task.id)).customer.params)

        assert await engine.run(read) == {"TicketId": "7", "Lang": "de", "CrmId": "CRM-9",
                                          "Tier": "gold"}
        [offer] = await sessions_of(engine, task.id)  # the ringing card shows them too
        assert offer.customer is not None and offer.customer.params["CrmId"] == "CRM-9"
