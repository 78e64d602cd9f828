"""Issue #19 item 9: the OpenAPI document tells the truth about the reporting export, a null
customer and the names a task's context may use."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import OpenAPIV30SpecValidator

from bot.app import create_app
from bot.config import Settings
from bot.interact.openapi import openapi_document
from bot.services import reporting
from bot.tasks_api import request as task_request
from tests.integration.test_export import ALL_KEY, SALES_KEY, get
from tests.integration.test_export import world as world  # the export's scenario
from tests.support.world import World

DOC = openapi_document()
REPORTS = ("/api/v1/sessions", "/api/v1/events")


def errors_for(schema: dict[str, Any], instance: Any) -> list[str]:
    validator = OAS30Validator({**schema, "components": DOC["components"]},
                               format_checker=oas30_format_checker)
    return [error.message for error in validator.iter_errors(instance)]


def test_the_document_stays_valid_openapi_3_0() -> None:
    OpenAPIV30SpecValidator(DOC).validate()


def test_every_reporting_route_is_described(tmp_path: Path) -> None:
    from tests.builders import catalog
    app = create_app(Settings(catalog=catalog(), db_path=str(tmp_path / "sb.db")))
    registered = {(route.method.lower(), route.resource.canonical) for route in
                  app.router.routes() if route.resource and route.method != "HEAD"
                  and route.resource.canonical.startswith(REPORTS)}
    assert registered == {("get", path) for path in REPORTS}
    for path in REPORTS:
        operation = DOC["paths"][path]["get"]
        assert operation["security"] == [{"apiKey": []}]
        assert {"200", "400", "401", "403", "503"} <= set(operation["responses"])
        assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
        names = {p["name"] for p in operation["parameters"]}
        assert {"service", "agent", "from", "to", "limit", "cursor"} <= names
    assert {p["name"] for p in DOC["paths"]["/api/v1/sessions"]["get"]["parameters"]} >= {
        "result", "tag"}
    assert "name" in {p["name"] for p in DOC["paths"]["/api/v1/events"]["get"]["parameters"]}


def check(path: str, status: int, body: Any) -> None:
    responses = DOC["paths"][path]["get"]["responses"]
    assert str(status) in responses, (path, status)
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    assert errors_for(schema, body) == [], (path, status, body)


async def test_real_exports_match_the_document(world: World) -> None:
    for path in REPORTS:
        status, body, headers = await get(world, f"{path}?limit=2")
        check(path, status, body)
        assert body["items"] and headers["X-Next-Cursor"] == body["next"]
        status, body, _ = await get(world, f"{path}?cursor={body['next']}")
        check(path, status, body)
        for bad in ("limit=0", "from=yesterday", "cursor=%20"):
            status, body, _ = await get(world, f"{path}?{bad}")
            assert status == 400
            check(path, status, body)
        status, body, _ = await get(world, f"{path}?service=support", SALES_KEY)
        check(path, status, body)
        status, body, _ = await get(world, path, "wrong")
        check(path, status, body)
        status, text, _ = await get(world, path, ALL_KEY, csv_format=True)
        columns = csv.DictReader(io.StringIO(text)).fieldnames
        documented = (reporting.SESSION_COLUMNS if path.endswith("sessions")
                      else reporting.EVENT_COLUMNS)
        assert tuple(columns or ()) == documented
        row = DOC["components"]["schemas"]["SessionRow" if path.endswith("sessions")
                                           else "EventRow"]
        assert tuple(row["properties"]) == documented


def test_customer_null_is_allowed_as_the_code_allows_it() -> None:
    task = {"$ref": "#/components/schemas/CreateTaskRequest"}
    assert errors_for(task, {"service": "sales", "title": "Call", "customer": None}) == []
    chat = {"$ref": "#/components/schemas/CreateChatRequest"}
    assert errors_for(chat, {"service": "sales", "customer": None}) == []
    service, parsed = task_request.parse_create({"service": "sales", "title": "Call",
                                                 "customer": None})
    assert (service, parsed.customer.name) == ("sales", "")  # the code takes it
    # An object still has to be one: a string is not a customer.
    assert errors_for(task, {"service": "sales", "title": "Call", "customer": "Jane"}) != []


def test_the_context_names_pattern_is_in_the_schema() -> None:
    context = DOC["components"]["schemas"]["CreateTaskRequest"]["properties"]["context"]
    names = context["x-propertyNames"]
    assert names["pattern"] == task_request.PARAM_NAME.pattern
    assert names["maxLength"] == task_request.MAX_PARAM_NAME
    assert task_request.PARAM_NAME.pattern in context["description"]
