"""The OpenAPI section of the reporting export."""

from __future__ import annotations

from typing import Any

from bot.interact.openapi_parts import (
    JSON,
    SESSION_RESULTS,
    Schema,
    Section,
    errors,
    obj,
    ref,
)
from bot.reporting.api import DEFAULT_LIMIT, MAX_LIMIT
from bot.services.reporting import EVENT_COLUMNS, SESSION_COLUMNS


def _nullable(kind: str, description: str = "", **extra: Any) -> Schema:
    schema: Schema = {"type": kind, "nullable": True, **extra}
    if description:
        schema["description"] = description
    return schema


def reporting_schemas() -> dict[str, Schema]:
    moment = {"type": "string", "format": "date-time"}
    when = _nullable("string", format="date-time")
    seconds = _nullable("number", minimum=0)
    text = _nullable("string")
    session = obj({
        "session_id": {"type": "string"}, "task_id": {"type": "string"},
        "service_id": {"type": "string"}, "service": {"type": "string"},
        "agent_id": {"type": "string"},
        "modality": {"type": "string", "enum": ["im", "email", "external"]},
        "result": _nullable("string", "null while the offer rings.",
                            enum=[*SESSION_RESULTS, None]),
        "result_label": {"type": "string"},
        "customer": _nullable("string", "Who the customer is, or 'Not "
                              "available' once the service no longer keeps it."),
        "offered_at": moment, "answered_at": when, "connected_at": when,
        "terminated_at": when, "acw_ended_at": when,
        "queue_seconds": seconds, "ring_seconds": seconds, "connected_seconds": seconds,
        "acw_seconds": seconds,
        "primary_code": text, "secondary_code": text,
        "tags": {"type": "string", "description": "The wrap-up tags, separated by ';'."},
        "saved_at": when, "transferred_to": text,
    }, list(SESSION_COLUMNS), "One offer of a task to an agent, and how it went.")
    event = obj({
        "seq": {"type": "integer", "minimum": 1}, "at": moment, "name": {"type": "string"},
        "task_id": text, "session_id": text, "agent_id": text, "service_id": text,
        "data": {"type": "string", "description": "The event's data as a JSON object, in "
                 "text (no customer data)."},
    }, list(EVENT_COLUMNS), "One event of the log, in order of `seq`.")
    return {
        "SessionRow": session,
        "EventRow": event,
        "SessionPage": obj({"items": {"type": "array", "items": ref("SessionRow"),
                                      "maxItems": MAX_LIMIT},
                            "next": _nullable("string", PAGE_NEXT)}, ["items", "next"]),
        "EventPage": obj({"items": {"type": "array", "items": ref("EventRow"),
                                    "maxItems": MAX_LIMIT},
                          "next": _nullable("string", PAGE_NEXT)}, ["items", "next"]),
    }


PAGE_NEXT = ("The cursor of the next page, null at the end. A page may hold fewer rows than "
             "`limit`, even none, and still have a next one: each request looks at a bounded "
             "number of rows. Read on until next is null.")


def _query(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def _export(kind: str, page: str, row: str, extra: list[Schema]) -> Schema:
    moment = {"type": "string", "format": "date-time"}
    what = "offered" if kind == "sessions" else "recorded"
    return {"get": {
        "tags": ["Reporting"],
        "operationId": f"export{kind.title()}",
        "summary": f"Export {kind}",
        "description": f"{kind.title()} of the services the API key names, oldest first, "
                       "a page at a time. `Accept: text/csv` gives CSV with the columns of "
                       f"{row} (cells that would start a spreadsheet formula get a leading "
                       "').",
        "security": [{"apiKey": []}],
        "parameters": [
            _query("service", "Only this service (one the key names, else 403)."),
            _query("agent", "Only this agent (their id)."),
            *extra,
            _query("from", f"Only {kind} {what} at or after this moment (ISO 8601 with a "
                           "time zone).", moment),
            _query("to", f"Only {kind} {what} before this moment.", moment),
            _query("limit", f"Rows per page, at most {MAX_LIMIT}.",
                   {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT}),
            _query("cursor", "`next` of the page before.",
                   {"type": "string", "pattern": "^[0-9]{1,19}$"} if kind == "events"
                   else {"type": "string"}),
        ],
        "responses": {
            "200": {"description": "A page.",
                    "headers": {"X-Next-Cursor": {
                        "description": "`next`, when there is a next page.",
                        "schema": {"type": "string"}}},
                    "content": {JSON: {"schema": ref(page)},
                                "text/csv": {"schema": {"type": "string"}}}},
            **errors({400: "A query parameter is not one the export takes.",
                      401: "No API key, or not a valid one.",
                      403: "The API key does not name this service.",
                      503: "The store is busy; retry with backoff."}),
        },
    }}


def reporting_paths() -> dict[str, Schema]:
    return {
        "/api/v1/sessions": _export("sessions", "SessionPage", "SessionRow", [
            _query("result", "Only sessions with this result.",
                   {"type": "string", "enum": SESSION_RESULTS}),
            _query("tag", "Only sessions saved with this tag (any case)."),
        ]),
        "/api/v1/events": _export("events", "EventPage", "EventRow", [
            _query("name", "Only events of this name, e.g. offer.accepted."),
        ]),
    }


def reporting_section() -> Section:
    return Section(
        tag="Reporting",
        description="The reporting export: sessions and events as flat rows (JSON or CSV), "
                    "filtered and paged, with an API key of the services file (the one of "
                    "the task API).",
        paths=reporting_paths(),
        schemas=reporting_schemas(),
    )


# -- the whole document ----------------------------------------------------------------------------

