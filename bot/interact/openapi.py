"""The OpenAPI 3.0 document of Switchboard's HTTP interfaces, built by code and served at
/api/openapi.json.

The document is assembled from sections: each interface (Interact, the external task API)
contributes a tag, paths, component schemas and security schemes through a function that
returns a `Section`, listed in `SECTIONS`. `add_section` refuses a path or component name
that another section already uses, so sections cannot overwrite each other silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.domain.session import SessionResult
from bot.interact.api import (
    CONTEXT_NAME,
    MAX_BODY_BYTES,
    MAX_CONTEXT,
    MAX_CONTEXT_VALUE,
    MAX_TEXT_BYTES,
    PREFIX,
)
from bot.reporting.api import DEFAULT_LIMIT, MAX_LIMIT
from bot.services.conversation import MAX_MESSAGE_LENGTH
from bot.services.reporting import EVENT_COLUMNS, SESSION_COLUMNS
from bot.tasks_api import request as task_request
from bot.tasks_api.api import IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY_MAX, REPLAYED_HEADER
from bot.tasks_api.api import MAX_BODY_BYTES as TASK_MAX_BODY
from bot.tasks_api.api import PREFIX as TASKS
from bot.tasks_api.api import PRIVACY_PREFIX as PRIVACY

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

CHAT_ID = {"name": "chat_id", "in": "path", "required": True,
           "description": "The chat id from POST /chats.", "schema": {"type": "string"}}
SEQ = {"type": "integer", "minimum": 1,
       "description": "The row's sequence number in the chat: 1, 2, 3... Resume after it."}
AT = {"type": "string", "format": "date-time", "description": "When it happened (ISO 8601)."}


def _event(kind: str, description: str, properties: dict[str, Schema],
           required: list[str]) -> Schema:
    props: dict[str, Schema] = {"seq": SEQ, "type": {"type": "string", "enum": [kind]},
                                "at": AT}
    props.update(properties)
    return obj(props, ["seq", "type", "at", *required], description)


def interact_schemas() -> dict[str, Schema]:
    text_limits = (f"At most {MAX_TEXT_BYTES} bytes of UTF-8 (else 413) and "
                   f"{MAX_MESSAGE_LENGTH} characters once trimmed (else 422).")
    return {
        "Customer": obj({
            "name": {"type": "string", "maxLength": 320, "example": "Jane Doe"},
            "email": {"type": "string", "maxLength": 320, "example": "jane@example.com"},
            "phone": {"type": "string", "maxLength": 320},
            "params": {"type": "object", "maxProperties": 50,
                       "additionalProperties": {"type": "string", "maxLength": 1024},
                       "description": "Up to 50 names (at most 64 characters) mapped to "
                                      "strings, shown to the agent."},
        }, description="Who the customer says they are; every field is optional. null is "
                       "the same as leaving it out.") | {"nullable": True},
        "CreateChatRequest": obj({
            "service": {"type": "string", "description": "The id of a service that takes "
                                                         "website chats (modality im).",
                        "example": "sales"},
            "text": {"type": "string", "default": "",
                     "description": "The customer's first message, if any. " + text_limits},
            "customer": ref("Customer"),
            "context": {"type": "object", "maxProperties": MAX_CONTEXT, "nullable": True,
                        "additionalProperties": {"type": "string",
                                                 "maxLength": MAX_CONTEXT_VALUE},
                        "x-propertyNames": {"type": "string",
                                            "pattern": CONTEXT_NAME.pattern},
                        "description": "Named values from the page (a cart id, a product) "
                                       "for the service's context URL ({param.NAME}); names "
                                       f"match `{CONTEXT_NAME.pattern}`."},
            "identity": obj({
                "name": {"type": "string", "maxLength": 320},
                "email": {"type": "string", "maxLength": 320},
                "exp": {"type": "integer", "description": "Unix time (seconds) the signature "
                        "ends; at most 24 hours ahead."},
                "sig": {"type": "string", "maxLength": 128,
                        "description": "Hex HMAC-SHA256 under the service's identity key of "
                                       "\"switchboard-identity-v1\\n<service>\\n<name>\\n"
                                       "<email>\\n<exp>\"."},
            }, ["exp", "sig"], "A signed-in customer, signed by the website's server with the "
               "service's [service.interact] identity_key: the agent sees this name and email "
               "as verified. A bad or expired signature is refused (401).")
            | {"additionalProperties": False, "nullable": True},
        }, ["service"]),
        "CreateChatResponse": obj({
            "chat_id": {"type": "string"},
            "token": {"type": "string", "description": "The chat's bearer token. Only its "
                      "hash is stored: keep it, it cannot be fetched again."},
            "visitor": {"type": "string", "description": "How the agent sees the customer: "
                        "their name, or 'Visitor N'.", "example": "Jane Doe"},
            "position": {"type": "integer", "minimum": 0, "description": "Place in the "
                         "queue, 1 for the next in line; 0 when an agent is already being "
                         "offered the chat."},
        }, ["chat_id", "token", "visitor", "position"]),
        "PostMessageRequest": obj({"text": {"type": "string", "minLength": 1,
                                            "description": text_limits}}, ["text"]),
        "PostMessageResponse": obj({"seq": SEQ}, ["seq"], "The message was stored; it comes "
                                   "back over the WebSocket as a message event."),
        "EndChatResponse": obj({"chat_id": {"type": "string"},
                                "ended": {"type": "boolean", "enum": [True]}},
                               ["chat_id", "ended"]),
        # The WebSocket's events, one JSON object per text frame.
        "MessageEvent": _event("message", "A message of the conversation.", {
            "id": {"type": "string", "description": "Unique per message: '<chat_id>:<seq>'."},
            "text": {"type": "string", "description": "Plain text: show it as text, never "
                                                      "as HTML."},
            "from": {"type": "string", "enum": ["customer", "agent", "system"]},
        }, ["id", "text", "from"]),
        "QueuedEvent": _event("queued", "The chat is waiting for an agent (again): at the "
                              "start, after an agent did not answer, or on a transfer.", {
            "transfer": {"type": "string", "description": "Present on a transfer: the name "
                                                          "of the service it moved to."},
        }, []),
        "QueuePositionEvent": obj({
            "seq": {"type": "integer", "minimum": 0, "description": "The seq of the last row "
                    "sent: a snapshot is not a row and gets no seq of its own."},
            "type": {"type": "string", "enum": ["queued"]},
            "position": {"type": "integer", "minimum": 1,
                         "description": "Place in the queue, 1 for the next in line."},
        }, ["seq", "type", "position"], "A queue-position snapshot (no `at`): sent on "
           "connect and whenever the position changes while the chat waits."),
        "AcceptedEvent": _event("accepted", "An agent took the chat.", {
            "agent": {"type": "string", "description": "The agent's display name.",
                      "example": "Jane"},
        }, ["agent"]),
        "EndedEvent": _event("ended", "The chat ended; the server closes the socket after it.", {
            "by": {"type": "string", "enum": ["customer", "agent", "system"],
                   "description": "Who ended it; system: idle timeout or a stale session."},
        }, ["by"]),
        "ExpiredEvent": _event("expired", "No agent took the chat within the service's "
                               "maximum queue time; the server closes the socket after it.", {
            "message": {"type": "string", "description": "The service's offline message."},
        }, ["message"]),
        "ChatEvent": {"oneOf": [ref(name) for name in (
            "MessageEvent", "QueuedEvent", "QueuePositionEvent", "AcceptedEvent",
            "EndedEvent", "ExpiredEvent")],
            "description": "Any event the chat WebSocket sends. Rows (every event with `at`) "
                           "carry increasing seq numbers; ignore a row whose seq you already "
                           "have."},
    }


def interact_paths() -> dict[str, Schema]:
    bearer: list[dict[str, list[str]]] = [{"chatToken": []}]
    rate = ("Rate limited (Retry-After says how long to wait): 60 requests a minute per "
            "client address")
    too_big = (f"The body is larger than {MAX_BODY_BYTES // 1024} KB, or `text` is larger "
               f"than {MAX_TEXT_BYTES // 1024} KB.")
    busy = "The chat service is starting or its store is busy; retry with backoff."
    return {
        f"{PREFIX}/chats": {"post": {
            "tags": ["Interact"],
            "operationId": "createChat",
            "summary": "Open a website chat",
            "description": "Queues a chat (an IM task) for the service; agents are offered it "
                           "in Teams. Pages of another origin need it in the service's "
                           "interact.allowed_origins.",
            "security": [],
            "requestBody": json_body(ref("CreateChatRequest")),
            "responses": {
                "201": json_response("The chat is queued.", ref("CreateChatResponse")),
                **errors({400: "The body is not a JSON object, names no service, or a field "
                               "has the wrong type.",
                          401: "The identity's signature is not valid, or has expired.",
                          403: "This website (Origin) may not open chats for this service.",
                          404: "There is no such service.",
                          413: too_big,
                          422: "The service takes no website chats, or the text is too long.",
                          429: rate + ".",
                          503: busy}),
            },
        }},
        f"{PREFIX}/chats/{{chat_id}}/messages": {"post": {
            "tags": ["Interact"],
            "operationId": "postChatMessage",
            "summary": "Send the customer's message",
            "parameters": [CHAT_ID],
            "security": bearer,
            "requestBody": json_body(ref("PostMessageRequest")),
            "responses": {
                "202": json_response("Stored; relayed to the agent once one has the chat.",
                                     ref("PostMessageResponse")),
                **errors({400: "The body is not a JSON object, or `text` is missing or empty.",
                          401: "The Authorization header is missing, or the token is wrong.",
                          403: "This website (Origin) may not use this chat.",
                          404: "There is no such chat.",
                          409: "The chat has ended.",
                          413: too_big,
                          422: "The text is too long once trimmed.",
                          429: rate + ", 20 messages per 10 seconds per chat.",
                          503: busy}),
            },
        }},
        f"{PREFIX}/chats/{{chat_id}}/end": {"post": {
            "tags": ["Interact"],
            "operationId": "endChat",
            "summary": "End the chat (the customer leaves)",
            "description": "Before an agent accepted, the chat is cancelled; after, it ends. "
                           "Ending an ended chat is not an error. No body is needed.",
            "parameters": [CHAT_ID],
            "security": bearer,
            "responses": {
                "200": json_response("The chat has ended.", ref("EndChatResponse")),
                **errors({401: "The Authorization header is missing, or the token is wrong.",
                          403: "This website (Origin) may not use this chat.",
                          404: "There is no such chat.",
                          503: busy}),
            },
        }},
        f"{PREFIX}/chats/{{chat_id}}/ws": {"get": {
            "tags": ["Interact"],
            "operationId": "chatEvents",
            "summary": "The chat's events (WebSocket)",
            "description": (
                "Upgrade to a WebSocket (browsers cannot set headers on one, so the token is "
                "the `token` query parameter). The server sends one JSON object per text "
                "frame, a ChatEvent, and never reads what the client sends:\n\n"
                "- message `{seq, type: \"message\", at, id, text, from}` — from customer, "
                "agent or system;\n"
                "- queued `{seq, type: \"queued\", at[, transfer]}` — waiting (again);\n"
                "- queued snapshot `{seq, type: \"queued\", position}` — place in the queue, "
                "not a row: its seq repeats the last row's;\n"
                "- accepted `{seq, type: \"accepted\", at, agent}`;\n"
                "- ended `{seq, type: \"ended\", at, by}` and expired `{seq, type: \"expired\", "
                "at, message}` — the last events; the server then closes the socket.\n\n"
                "First it sends every row after `after`, so a client that reconnects with "
                "the last seq it saw misses nothing and gets nothing twice. The server pings "
                "every 25 s."),
            "parameters": [
                CHAT_ID,
                {"name": "after", "in": "query", "required": False,
                 "description": "Send only rows with a greater seq (the last one seen).",
                 "schema": {"type": "integer", "minimum": 0, "default": 0}},
            ],
            "security": [{"chatTokenQuery": []}],
            "responses": {
                "101": {"description": "Switching to the WebSocket protocol; then ChatEvent "
                                       "frames.",
                        "content": {JSON: {"schema": ref("ChatEvent")}}},
                **errors({400: "`after` is not a sequence number, or the request is not a "
                               "WebSocket upgrade.",
                          401: "The token is missing or wrong.",
                          403: "This website (Origin) may not use this chat.",
                          404: "There is no such chat."}),
            },
        }},
        "/interact/widget.js": {"get": {
            "tags": ["Interact"],
            "operationId": "widgetScript",
            "summary": "The embeddable chat widget",
            "description": "Add `<script src=\"https://<host>/interact/widget.js\" "
                           "data-service=\"sales\" data-label=\"Chat with us\"></script>` to "
                           "a page: a chat launcher appears where the tag is.",
            "security": [],
            "responses": {"200": {"description": "The script.", "content": {
                "application/javascript": {"schema": {"type": "string"}}}}},
        }},
    }


def interact_section() -> Section:
    return Section(
        tag="Interact",
        description="The website chat under " + PREFIX + ": open a chat, send messages, "
                    "follow it over a WebSocket, end it. Every path under " + PREFIX + " "
                    "answers a CORS preflight (OPTIONS) for the origins the services allow.",
        paths=interact_paths(),
        schemas=interact_schemas(),
        security_schemes={
            "chatToken": {"type": "http", "scheme": "bearer",
                          "description": "The chat token from POST /chats, as "
                                         "`Authorization: Bearer <token>`."},
            "chatTokenQuery": {"type": "apiKey", "in": "query", "name": "token",
                               "description": "The chat token from POST /chats, for the "
                                              "WebSocket."},
        },
    )


# -- External tasks: the task API for automations (Power Automate) ------------------------------

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


SECTIONS: list[Callable[[], Section]] = [interact_section, tasks_section, privacy_section,
                                          reporting_section]


def openapi_document() -> dict[str, Any]:
    document = base_document()
    for section in SECTIONS:
        add_section(document, section())
    return document


def openapi_route() -> web.RouteDef:
    """GET /api/openapi.json: the document, built once per app."""
    document = openapi_document()

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(document, headers={"Cache-Control": "public, max-age=300",
                                                    "Access-Control-Allow-Origin": "*"})

    return web.get("/api/openapi.json", handler)
