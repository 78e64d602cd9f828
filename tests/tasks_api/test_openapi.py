"""The task API in the OpenAPI document: described route by route, real answers match it, and
the committed Swagger 2.0 export for Power Automate is valid and up to date."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import OpenAPIV2SpecValidator, OpenAPIV30SpecValidator

from bot.app import create_app
from bot.config import Settings
from bot.interact.openapi import openapi_document
from tests.support.waiting import eventually
from tests.tasks_api.conftest import OPS_KEY, Api, tasks_catalog

ROOT = Path(__file__).resolve().parents[2]
DOC = openapi_document()
PREFIX = "/api/v1/tasks"
PRIVACY_PREFIX = "/api/v1/privacy"


def export_script() -> ModuleType:
    name = "_switchboard_connector_export"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "connector" / "export_swagger.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def check(method: str, template: str, status: int, body: Any) -> None:
    responses = DOC["paths"][template][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {template} answered {status}"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    validator = OAS30Validator({**schema, "components": DOC["components"]},
                               format_checker=oas30_format_checker)
    errors = [e.message for e in validator.iter_errors(body)]
    assert errors == [], (template, status, body)


def test_the_document_is_valid_and_describes_every_task_route(tmp_path: Path) -> None:
    OpenAPIV30SpecValidator(DOC).validate()
    app = create_app(Settings(catalog=tasks_catalog(), db_path=str(tmp_path / "sb.db")))
    prefixes = (PREFIX, PRIVACY_PREFIX)
    registered = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
                  if r.resource is not None and r.resource.canonical.startswith(prefixes)
                  and r.method != "HEAD"}
    documented = {(method, path) for path, item in DOC["paths"].items()
                  if path.startswith(prefixes) for method in item}
    assert registered == documented == {("post", PREFIX), ("get", f"{PREFIX}/{{task_id}}"),
                                        ("delete", f"{PREFIX}/{{task_id}}"),
                                        ("patch", f"{PREFIX}/{{task_id}}"),
                                        ("post", f"{PRIVACY_PREFIX}/erase"),
                                        ("post", f"{PRIVACY_PREFIX}/export")}
    for method, path in documented:
        operation = DOC["paths"][path][method]
        assert operation["security"] == [{"apiKey": []}]
        assert {"401", "403"} <= set(operation["responses"])
    assert {"422", "429"} <= set(DOC["paths"][PREFIX]["post"]["responses"])
    assert "409" in DOC["paths"][f"{PREFIX}/{{task_id}}"]["delete"]["responses"]


async def test_real_answers_match_the_document(api: Api) -> None:
    item = f"{PREFIX}/{{task_id}}"
    agent = api.world.agent(1)
    await agent.register()
    status, created, _ = await api.call("POST", PREFIX, json={
        "service": "sales", "title": "Check", "due": "2026-11-03T17:00:00Z",
        "link": "https://x.example/1", "customer": {"name": "Jo"}, "context": {"A": "1"}})
    check("post", PREFIX, status, created)
    task_id = created["task_id"]
    for body in ({"title": "x"}, {"service": "sales", "title": "x", "priority": "high"}):
        status, answer, _ = await api.call("POST", PREFIX, json=body)
        check("post", PREFIX, status, answer)
    status, answer, _ = await api.call("POST", PREFIX, json={"service": "billing", "title": "x"})
    check("post", PREFIX, status, answer)
    status, answer, _ = await api.call("POST", PREFIX, key="wrong", json={})
    check("post", PREFIX, status, answer)
    for _ in range(3):  # max_open = 3: the third of these answers 429
        status, answer, _ = await api.call("POST", PREFIX, json={"service": "sales",
                                                                 "title": "More"})
        check("post", PREFIX, status, answer)
    assert status == 429
    status, answer = await api.get(task_id)
    check("get", item, status, answer)
    status, answer = await api.get("nope")
    check("get", item, status, answer)
    status, answer = await api.get(task_id, key=OPS_KEY)
    check("get", item, status, answer)
    [invitation] = await eventually(lambda: agent.buttons("accept"))
    session_id, _ = await agent.accept(invitation)
    status, answer, _ = await api.call("DELETE", f"{PREFIX}/{task_id}")
    assert status == 409
    check("delete", item, status, answer)
    await agent.click("terminate", {"session_id": session_id}, reply_to=invitation["id"])
    await api.world.advance(30)
    status, answer = await api.get(task_id)
    assert answer["state"] == "done"
    check("get", item, status, answer)


def test_the_swagger_export_is_valid_and_up_to_date() -> None:
    script = export_script()
    committed = (ROOT / "connector" / "apiDefinition.swagger.json").read_text(encoding="utf-8")
    assert committed == script.render(), "run: python connector/export_swagger.py"
    swagger = json.loads(committed)
    OpenAPIV2SpecValidator(swagger).validate()
    assert set(swagger["paths"]) == {PREFIX, f"{PREFIX}/{{task_id}}"}  # only the task API
    operations = {op["operationId"] for item in swagger["paths"].values() for op in item.values()}
    assert operations == {"CreateTask", "GetTask", "CancelTask", "UpdateTaskContext"}
    assert swagger["securityDefinitions"]["apiKey"] == {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": swagger["securityDefinitions"]["apiKey"]["description"]}
    header, body = swagger["paths"][PREFIX]["post"]["parameters"]
    assert body["in"] == "body" and body["schema"] == {"$ref": "#/definitions/CreateTaskRequest"}
    # Power Automate shows the idempotency key among the advanced parameters of the action.
    assert (header["in"], header["name"], header["required"], header["x-ms-visibility"]) == (
        "header", "Idempotency-Key", False, "advanced")
    request = swagger["definitions"]["CreateTaskRequest"]["properties"]
    assert request["due"]["x-nullable"] is True and "nullable" not in request["due"]
    assert "#/components/" not in committed


def test_the_check_mode_notices_a_stale_file(tmp_path: Path) -> None:
    script = export_script()
    stale = tmp_path / "api.json"
    stale.write_text("{}", encoding="utf-8")
    assert script.main(["--check", "--out", str(stale)]) == 1
    assert script.main(["--out", str(stale), "--host", "sb.example.org"]) == 0
    assert json.loads(stale.read_text(encoding="utf-8"))["host"] == "sb.example.org"
    assert script.main(["--check", "--out", str(stale), "--host", "sb.example.org"]) == 0
