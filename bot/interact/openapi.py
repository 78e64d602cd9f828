"""The OpenAPI 3.0 document of Switchboard's HTTP interfaces, built by code and served at
/api/openapi.json.

The document is assembled from sections: each interface (Interact, the external task API)
contributes a tag, paths, component schemas and security schemes through a function that
returns a `Section`, listed in `SECTIONS`. `add_section` refuses a path or component name
that another section already uses, so sections cannot overwrite each other silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.interact.api import (
    CONTEXT_NAME,
    MAX_BODY_BYTES,
    MAX_CONTEXT,
    MAX_CONTEXT_VALUE,
    MAX_TEXT_BYTES,
    PREFIX,
)
from bot.interact.openapi_parts import (
    JSON,
    Schema,
    Section,
    add_section,
    base_document,
    errors,
    json_body,
    json_response,
    obj,
    ref,
)
from bot.interact.openapi_reporting import reporting_section
from bot.interact.openapi_tasks import privacy_section, tasks_section
from bot.observability.openapi import status_section
from bot.services.conversation import MAX_MESSAGE_LENGTH

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
                          429: rate + ", 20 customer lines per 10 seconds per chat (its first"
                               " included).",
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




SECTIONS: list[Callable[[], Section]] = [interact_section, tasks_section, privacy_section,
                                          reporting_section, status_section]


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
