"""The OpenAPI sections of the external task API and the privacy API."""

from __future__ import annotations

from bot.interact.openapi_parts import (
    Schema,
    Section,
    errors,
    json_body,
    json_response,
    obj,
    ref,
)
from bot.tasks_api import request as task_request
from bot.tasks_api.api import IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY_MAX, REPLAYED_HEADER
from bot.tasks_api.api import MAX_BODY_BYTES as TASK_MAX_BODY
from bot.tasks_api.api import PREFIX as TASKS
from bot.tasks_api.api import PRIVACY_PREFIX as PRIVACY

TASK_STATES = ["queued", "ringing", "connected", "wrapup", "done", "cancelled", "expired"]
TASK_ID = {"name": "task_id", "in": "path", "required": True, "x-ms-summary": "Task id",
           "description": "The task_id from creating the task.", "schema": {"type": "string"}}


IDEMPOTENCY_KEY = {
    "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
    "x-ms-summary": "Idempotency key", "x-ms-visibility": "advanced",
    "description": "Any unique value (a UUID, say) that a retry of this request repeats: the "
                   "task it created comes back instead of a second one (for as long as the "
                   "task is kept). Per API key; with another service it is refused (422).",
    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX,
               "pattern": "^[!-~]+$"}}


def _when(description: str) -> Schema:
    return {"type": "string", "format": "date-time", "nullable": True,
            "description": description}


def tasks_schemas() -> dict[str, Schema]:
    r = task_request
    state = {"type": "string", "enum": TASK_STATES, "x-ms-summary": "State",
             "description": "queued (waiting), ringing (offered to agents), connected "
                            "(accepted), wrapup (completed, the agent wraps up), done; or "
                            "cancelled (withdrawn before Accept) or expired (nobody accepted "
                            "it within the service's maximum queue time)."}
    return {
        "TaskCustomer": obj({
            "name": {"type": "string", "maxLength": r.MAX_CUSTOMER_FIELD, "nullable": True,
                     "x-ms-summary": "Customer name", "example": "Jane Doe"},
            "email": {"type": "string", "maxLength": r.MAX_CUSTOMER_FIELD, "nullable": True,
                      "x-ms-summary": "Customer email", "example": "jane@example.com"},
            "phone": {"type": "string", "maxLength": r.MAX_CUSTOMER_FIELD, "nullable": True,
                      "x-ms-summary": "Customer phone"},
        }, description="Whom the task is about, shown to the agent; every field is optional. "
                       "null is the same as leaving it out.")
        | {"additionalProperties": False, "nullable": True},
        "CreateTaskRequest": obj({
            "service": {"type": "string", "minLength": 1, "maxLength": 64,
                        "x-ms-summary": "Service",
                        "description": "The id of a service the API key names.",
                        "example": "sales"},
            "title": {"type": "string", "minLength": 1, "maxLength": r.MAX_TITLE,
                      "x-ms-summary": "Title", "description": "What to do, in one line.",
                      "example": "Call back about ticket 4711"},
            "description": {"type": "string", "maxLength": r.MAX_DESCRIPTION,
                            "nullable": True, "x-ms-summary": "Description",
                            "description": "Details for the agent (plain text)."},
            "due": {"type": "string", "format": "date-time", "nullable": True,
                    "x-ms-summary": "Due", "description": "When it is due: ISO 8601 with a "
                    "time zone, e.g. 2026-11-03T17:00:00Z.",
                    "example": "2026-11-03T17:00:00Z"},
            "link": {"type": "string", "format": "uri", "maxLength": r.MAX_LINK,
                     "nullable": True, "x-ms-summary": "Link",
                     "description": "An http(s) link the agent opens (the ticket, the record).",
                     "example": "https://crm.example.com/tickets/4711"},
            "customer": ref("TaskCustomer"),
            "context": {"type": "object", "maxProperties": r.MAX_PARAMS, "nullable": True,
                        "additionalProperties": {"type": "string",
                                                 "maxLength": r.MAX_PARAM_VALUE},
                        "x-ms-summary": "Context parameters",
                        "description": "Named values for the service's context URL "
                                       "({param.NAME}); names use letters, digits, '_', '.' "
                                       f"and '-' (at most {r.MAX_PARAM_NAME}), that is they "
                                       f"match `{r.PARAM_NAME.pattern}`; any other name is "
                                       "refused (422).",
                        # OpenAPI 3.0 has no keyword for the names of a map's keys
                        # (propertyNames came with 3.1): the JSON Schema form as an extension.
                        "x-propertyNames": {"type": "string", "pattern": r.PARAM_NAME.pattern,
                                            "maxLength": r.MAX_PARAM_NAME},
                        "example": {"TicketId": "4711"}},
            "priority": {"type": "integer", "minimum": r.MIN_PRIORITY,
                         "maximum": r.MAX_PRIORITY, "nullable": True,
                         "x-ms-summary": "Priority", "description": "Higher is offered first; "
                         "default: the service's priority."},
        }, ["service", "title"]) | {"additionalProperties": False},
        "CreateTaskResponse": obj({
            "task_id": {"type": "string", "x-ms-summary": "Task id"},
            "state": state,
        }, ["task_id", "state"]),
        "TaskStatus": obj({
            "task_id": {"type": "string", "x-ms-summary": "Task id"},
            "service": {"type": "string", "x-ms-summary": "Service",
                        "description": "The service the task is in now (after a transfer, "
                                       "the new one)."},
            "state": state,
            "result": {"type": "string", "nullable": True, "x-ms-summary": "Result",
                       "enum": ["handled", "cancelled", "not_handled", None],
                       "description": "Once the task has ended: handled, cancelled or "
                                      "not_handled (expired); null before."},
            "created_at": {"type": "string", "format": "date-time",
                           "x-ms-summary": "Created at"},
            "accepted_at": _when("When an agent accepted it."),
            "completed_at": _when("When the agent completed it (after-call work follows)."),
            "ended_at": _when("When it ended: done after the wrap-up, cancelled or expired."),
        }, ["task_id", "service", "state", "result", "created_at", "accepted_at",
            "completed_at", "ended_at"]),
        "PatchTaskRequest": obj({
            "customer": ref("TaskCustomer"),
            "context": {"type": "object", "maxProperties": r.MAX_PARAMS, "nullable": True,
                        "additionalProperties": {"type": "string",
                                                 "maxLength": r.MAX_PARAM_VALUE},
                        "x-propertyNames": {"type": "string", "pattern": r.PARAM_NAME.pattern,
                                            "maxLength": r.MAX_PARAM_NAME},
                        "x-ms-summary": "Context parameters",
                        "description": "Parameters to add or overwrite (later values win); "
                                       "names as for creating a task.",
                        "example": {"Gender": "male", "TicketId": "4712"}},
        }, description="Customer fields given are set (null or left out: unchanged); "
                       "parameters are added or overwritten.") | {"additionalProperties": False},
        "PatchTaskResponse": obj({
            "task_id": {"type": "string"},
            "service": {"type": "string"},
            "state": state,
            "customer": obj({"name": {"type": "string"}, "email": {"type": "string"},
                             "phone": {"type": "string"}}, ["name", "email", "phone"]),
            "context": {"type": "object", "additionalProperties": {"type": "string"}},
        }, ["task_id", "service", "state", "customer", "context"]),
        "ValidationError": obj({
            "error": {"type": "string", "description": "Why the field is wrong."},
            "field": {"type": "string", "description": "The field, e.g. title or "
                      "customer.email or context.TicketId.", "example": "title"},
        }, ["error", "field"], "A field of the request is missing or wrong."),
    }


def tasks_paths() -> dict[str, Schema]:
    key: list[dict[str, list[str]]] = [{"apiKey": []}]
    unauthorized = "No API key, or not a valid one."
    busy = "The task service is starting or its store is busy; retry with backoff."
    return {
        TASKS: {"post": {
            "tags": ["Tasks"],
            "operationId": "CreateTask",
            "summary": "Create an external task",
            "description": "Queues a task for the service's agents; they see the title, "
                           "description, due date and link, and complete it after Accept.",
            "security": key,
            "parameters": [IDEMPOTENCY_KEY],
            "requestBody": json_body(ref("CreateTaskRequest")),
            "responses": {
                "201": json_response("The task is queued (or, for a retry with the same "
                                     f"{IDEMPOTENCY_HEADER}, was queued before).",
                                     ref("CreateTaskResponse"), {
                    "Location": {"description": "The task's URL.",
                                 "schema": {"type": "string"}},
                    REPLAYED_HEADER: {
                        "description": f"With an {IDEMPOTENCY_HEADER}: `true` when an earlier "
                                       "request with it created the task, else `false`.",
                        "schema": {"type": "string", "enum": ["true", "false"]}}}),
                **errors({400: f"The body is not a JSON object, or the {IDEMPOTENCY_HEADER} "
                               "header is not one the API takes.",
                          401: unauthorized,
                          403: "The API key does not name this service.",
                          413: f"The body is larger than {TASK_MAX_BODY // 1024} KB."}),
                "422": json_response("A field is missing or wrong: `field` names it.",
                                     ref("ValidationError")),
                **errors({429: "The service has as many open external tasks as its fair-use "
                               "cap (services file: [service.external] max_open) allows.",
                          503: busy}),
            },
        }},
        f"{TASKS}/{{task_id}}": {
            "get": {
                "tags": ["Tasks"],
                "operationId": "GetTask",
                "summary": "Get a task's state",
                "parameters": [TASK_ID],
                "security": key,
                "responses": {
                    "200": json_response("The task now.", ref("TaskStatus")),
                    **errors({401: unauthorized,
                              403: "The API key does not name the task's service.",
                              404: "There is no such task.",
                              503: busy}),
                },
            },
            "delete": {
                "tags": ["Tasks"],
                "operationId": "CancelTask",
                "summary": "Cancel a task not accepted yet",
                "description": "Withdraws a queued or ringing task; cancelling a cancelled "
                               "task changes nothing.",
                "parameters": [TASK_ID],
                "security": key,
                "responses": {
                    "200": json_response("The task, cancelled.", ref("TaskStatus")),
                    **errors({401: unauthorized,
                              403: "The API key does not name the task's service.",
                              404: "There is no such task.",
                              409: "An agent accepted the task already, or it has ended.",
                              503: busy}),
                },
            },
            "patch": {
                "tags": ["Tasks"],
                "operationId": "UpdateTaskContext",
                "summary": "Enrich a live task",
                "description": "Sets customer fields and adds or overwrites parameters of a "
                               "task (of any channel) while it is live, in a service the key "
                               "names; the agents' open cards show the new values.",
                "parameters": [TASK_ID],
                "security": key,
                "requestBody": json_body(ref("PatchTaskRequest")),
                "responses": {
                    "200": json_response("The task's context now.", ref("PatchTaskResponse")),
                    **errors({400: "The body is not a JSON object.",
                              401: unauthorized,
                              403: "The API key does not name the task's service now, or its "
                                   "scopes leave out tasks.",
                              404: "There is no such task.",
                              409: "The task has ended: its context can no longer change.",
                              413: f"The body is larger than {TASK_MAX_BODY // 1024} KB."}),
                    "422": json_response("A field is missing or wrong: `field` names it.",
                                         ref("ValidationError")),
                    **errors({503: busy}),
                },
            },
        },
    }


def _privacy_operation(operation_id: str, summary: str, description: str, answer: Schema,
                       key: list[dict[str, list[str]]], unauthorized: str,
                       busy: str) -> Schema:
    return {
        "tags": ["Privacy"],
        "operationId": operation_id,
        "summary": summary,
        "description": description + " Needs an API key with the privacy scope.",
        "security": key,
        "requestBody": json_body(ref("PrivacyRequest")),
        "responses": {
            "200": json_response("Done.", answer),
            **errors({400: "The body is not a JSON object.",
                      401: unauthorized,
                      403: "The API key's scopes leave out privacy.",
                      413: f"The body is larger than {TASK_MAX_BODY // 1024} KB."}),
            "422": json_response("A field is missing or wrong: `field` names it.",
                                 ref("ValidationError")),
            **errors({503: busy}),
        },
    }


def tasks_section() -> Section:
    return Section(
        tag="Tasks",
        description="External tasks under " + TASKS + " for automations such as a Power "
                    "Automate custom connector (connector/apiDefinition.swagger.json): create "
                    "a task for a service's agents, follow its state, cancel it before Accept.",
        paths=tasks_paths(),
        schemas=tasks_schemas(),
        security_schemes={
            "apiKey": {"type": "http", "scheme": "bearer",
                       "description": "An API key from the services file ([[api_key]], which "
                                      "stores only its SHA-256), as `Authorization: Bearer "
                                      "<key>`."},
        },
    )


# -- Reporting: the export for Power BI and friends ---------------------------------------------


def privacy_section() -> Section:
    r = task_request
    key: list[dict[str, list[str]]] = [{"apiKey": []}]
    unauthorized = "No API key, or not a valid one."
    busy = "The store is busy; retry with backoff."
    return Section(
        tag="Privacy",
        description="A customer's requests under GDPR, under " + PRIVACY + ": erase "
                    "everything about them, or see what is stored. Keys need "
                    "`scopes = [\"privacy\"]` in their [[api_key]] table.",
        paths={
            f"{PRIVACY}/erase": {"post": _privacy_operation(
                "EraseCustomer", "Erase a customer's data (GDPR Art. 17)",
                "Removes the customer's data from every task, session, chat line and pending "
                "web request across services, live tasks included (a live chat ends with a "
                "system message), and records a privacy.erased event without customer data.",
                ref("ErasureResult"), key, unauthorized, busy)},
            f"{PRIVACY}/export": {"post": _privacy_operation(
                "ExportCustomer", "Everything stored about a customer (GDPR Art. 15)",
                "What is still stored about the customer, task by task.",
                ref("PrivacyExport"), key, unauthorized, busy)},
        },
        schemas={
            "PrivacyRequest": obj({
                "customer": obj({
                    "email": {"type": "string", "maxLength": r.MAX_CUSTOMER_FIELD,
                              "nullable": True},
                    "phone": {"type": "string", "maxLength": r.MAX_CUSTOMER_FIELD,
                              "nullable": True},
                    "name": {"type": "string", "maxLength": r.MAX_CUSTOMER_FIELD,
                             "nullable": True},
                }, description="Whom the request is about: a record matches when any field "
                               "given equals its own (email and name without regard to case, "
                               "phone without spaces and separators). Give at least one.")
                | {"additionalProperties": False},
            }, ["customer"]) | {"additionalProperties": False},
            "ErasureResult": obj({
                "tasks": {"type": "integer", "minimum": 0,
                          "description": "Tasks that held something about the customer."},
                "messages": {"type": "integer", "minimum": 0,
                             "description": "Chat lines deleted."},
            }, ["tasks", "messages"]),
            "PrivacyExport": obj({
                "tasks": {"type": "array", "items": {"type": "object"},
                          "description": "Per task: ids, times, services, the live customer "
                                         "and content, each session's stored customer "
                                         "snapshot, codes and tags, and the chat lines still "
                                         "stored."},
            }, ["tasks"]),
        },
    )


