#!/usr/bin/env python3
"""Export the external task API as Swagger 2.0 for a Power Automate custom connector.

    python connector/export_swagger.py [--host switchboard.example.com] [--check]

Power Automate imports custom connectors from OpenAPI 2.0 (Swagger) only. This script takes the
"Tasks" section of the app's OpenAPI 3 document (bot.interact.openapi) and writes
``connector/apiDefinition.swagger.json`` next to it: the same paths, bodies, responses and
schemas, the bearer key as an API key in the Authorization header ("Bearer <key>"), `nullable`
as `x-nullable`. ``--check`` writes nothing and exits 1 when the committed file is out of date
(a test runs it). Import the file in Power Automate (Custom connectors, Import an OpenAPI file)
and set the host to your Switchboard's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "apiDefinition.swagger.json"
DEFAULT_HOST = "switchboard.example.com"
TAG = "Tasks"
JSON = "application/json"

sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing the package

from bot.interact.openapi import openapi_document  # noqa: E402


def _convert(node: Any) -> Any:
    """Schemas from OpenAPI 3.0 to 2.0: refs to #/definitions, nullable to x-nullable."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            converted[key] = value.replace("#/components/schemas/", "#/definitions/")
        elif key == "nullable":
            converted["x-nullable"] = value
        else:
            converted[key] = _convert(value)
    return converted


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = set()
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def _parameter(parameter: dict[str, Any]) -> dict[str, Any]:
    converted = {key: value for key, value in parameter.items() if key != "schema"}
    converted.update(_convert(parameter["schema"]))
    return converted


def _response(response: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"description": response["description"]}
    content = response.get("content", {})
    if JSON in content:
        converted["schema"] = _convert(content[JSON]["schema"])
    if response.get("headers"):
        converted["headers"] = {name: {"description": header.get("description", ""),
                                       **_convert(header["schema"])}
                                for name, header in response["headers"].items()}
    return converted


def _operation(operation: dict[str, Any], security: dict[str, str]) -> dict[str, Any]:
    converted: dict[str, Any] = {key: operation[key] for key in (
        "tags", "operationId", "summary", "description") if key in operation}
    parameters = [_parameter(p) for p in operation.get("parameters", [])]
    body = operation.get("requestBody")
    if body is not None:
        parameters.append({"name": "body", "in": "body", "required": body.get("required", True),
                           "schema": _convert(body["content"][JSON]["schema"])})
    if parameters:
        converted["parameters"] = parameters
    converted["responses"] = {status: _response(response)
                              for status, response in operation["responses"].items()}
    converted["security"] = [{security[name]: [] for name in requirement}
                             for requirement in operation.get("security", [])]
    return converted


def swagger(document: dict[str, Any], host: str = DEFAULT_HOST) -> dict[str, Any]:
    """The Tasks operations of `document` (OpenAPI 3.0) as a Swagger 2.0 document."""
    paths: dict[str, Any] = {}
    used_schemes: set[str] = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if TAG not in operation.get("tags", []):
                continue
            for requirement in operation.get("security", []):
                used_schemes |= set(requirement)
            paths.setdefault(path, {})[method] = operation
    schemes = document["components"]["securitySchemes"]
    security_names = {name: name for name in sorted(used_schemes)}
    definitions: dict[str, Any] = {}
    wanted = _refs(paths)
    while wanted - set(definitions):
        name = sorted(wanted - set(definitions))[0]
        schema = document["components"]["schemas"][name]
        definitions[name] = _convert(schema)
        wanted |= _refs(schema)
    [tag] = [t for t in document["tags"] if t["name"] == TAG]
    return {
        "swagger": "2.0",
        "info": {
            "title": "Switchboard tasks",
            "description": tag["description"],
            "version": document["info"]["version"],
        },
        "host": host,
        "basePath": "/",
        "schemes": ["https"],
        "consumes": [JSON],
        "produces": [JSON],
        "tags": [tag],
        "paths": {path: {method: _operation(op, security_names) for method, op in ops.items()}
                  for path, ops in paths.items()},
        "definitions": dict(sorted(definitions.items())),
        "securityDefinitions": {
            name: {"type": "apiKey", "in": "header", "name": "Authorization",
                   "description": schemes[name].get("description", "") + " Enter it as "
                   "\"Bearer <key>\"."}
            for name in security_names
        },
    }


def render(host: str = DEFAULT_HOST) -> str:
    return json.dumps(swagger(openapi_document(), host), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default=DEFAULT_HOST, help="host of the API in the file")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed file differs; write nothing")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render(args.host)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python connector/export_swagger.py",
                  file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
