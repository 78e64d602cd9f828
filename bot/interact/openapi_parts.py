"""Building blocks of the OpenAPI document: schema helpers, shared schemas, sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.domain.session import SessionResult

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1.0.0"
JSON = "application/json"
SESSION_RESULTS: list[str | None] = [r.value for r in SessionResult]

Schema = dict[str, Any]


# -- building blocks, shared by every section ----------------------------------------------------

def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: Schema, description: str = "", *, required: bool = True) -> Schema:
    body: Schema = {"required": required, "content": {JSON: {"schema": schema}}}
    if description:
        body["description"] = description
    return body


def json_response(description: str, schema: Schema,
                  headers: dict[str, Schema] | None = None) -> Schema:
    response: Schema = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def error_response(status: int, description: str) -> Schema:
    """A 4xx/5xx answer with the body {"error": "<a sentence for the person>"}."""
    headers = None
    if status == 429:
        headers = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                   "schema": {"type": "integer", "minimum": 1}}}
    return json_response(description, ref("Error"), headers)


def errors(by_status: dict[int, str]) -> dict[str, Schema]:
    """Error responses keyed by status, each with its own description."""
    return {str(status): error_response(status, text) for status, text in by_status.items()}


def obj(properties: dict[str, Schema], required: list[str] | None = None,
        description: str = "") -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


SHARED_SCHEMAS: dict[str, Schema] = {
    "Error": obj({"error": {"type": "string",
                            "description": "What went wrong, written for a person.",
                            "example": "Too many requests; slow down."}},
                 ["error"], "The body of every refusal (4xx) and of 503."),
}


@dataclass
class Section:
    """What one interface contributes to the document."""

    tag: str
    description: str
    paths: dict[str, Schema]
    schemas: dict[str, Schema] = field(default_factory=dict)
    security_schemes: dict[str, Schema] = field(default_factory=dict)


def base_document() -> dict[str, Any]:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Switchboard",
            "version": API_VERSION,
            "description": "Switchboard's HTTP interfaces. Every refusal answers with a JSON "
                           "body {\"error\": \"...\"} and a 4xx status; 503 means the service "
                           "is starting or its store is busy: retry with backoff.",
        },
        "tags": [],
        "paths": {},
        "components": {"schemas": dict(SHARED_SCHEMAS), "securitySchemes": {}},
    }


def add_section(document: dict[str, Any], section: Section) -> None:
    """Merge a section into the document; a name used twice is a programming error."""
    components = document["components"]
    for target, extra in ((document["paths"], section.paths),
                          (components["schemas"], section.schemas),
                          (components["securitySchemes"], section.security_schemes)):
        clash = set(target) & set(extra)
        if clash:
            raise ValueError(f"OpenAPI section {section.tag!r} redefines {sorted(clash)}")
        target.update(extra)
    document["tags"].append({"name": section.tag, "description": section.description})


# -- Interact: the website chat ------------------------------------------------------------------

