"""The OpenAPI section of GET /api/v1/status."""

from __future__ import annotations

from bot.domain.agent import AgentState
from bot.interact.openapi_parts import Schema, Section, errors, json_response, obj, ref

_COUNT: Schema = {"type": "integer", "minimum": 0}


def status_schemas() -> dict[str, Schema]:
    return {
        "StatusAnswer": obj({
            "instance": ref("InstanceStatus"),
            "services": {"type": "array", "items": ref("ServiceStatus"),
                         "description": "Every service the caller may see, in the services "
                                        "file's order."},
        }, ["instance", "services"]),
        "InstanceStatus": obj({
            "id": {"type": "string", "description": "This process (changes at each start)."},
            "version": {"type": "string"},
            "uptime_seconds": {"type": "number", "minimum": 0},
            "jobs_due": {**_COUNT, "description": "Timers and jobs due now and not held by "
                                                  "a running instance (fleet-wide)."},
            "jobs_overdue": {**_COUNT, "description": "Of those, due for more than 30 s."},
            "outbound_queue": {**_COUNT, "description": "Requests to Teams queued or under "
                                                        "way in this process."},
        }, ["id", "version", "uptime_seconds", "jobs_due", "jobs_overdue", "outbound_queue"],
            description="The instance that answered."),
        "ServiceStatus": obj({
            "id": {"type": "string"},
            "queue": obj({
                "waiting": {**_COUNT, "description": "queued + ringing"},
                "queued": _COUNT,
                "ringing": {**_COUNT, "description": "Tasks an agent is being offered."},
                "oldest_wait_seconds": {"type": "number", "minimum": 0, "nullable": True,
                                        "description": "The longest wait of a waiting task; "
                                                       "null when none waits."},
            }, ["waiting", "queued", "ringing", "oldest_wait_seconds"]),
            "agents": obj({state.value: _COUNT for state in AgentState},
                          [state.value for state in AgentState],
                          description="The service's members by derived state."),
            "sessions": obj({"live": {**_COUNT, "description": "Connected."},
                             "acw": {**_COUNT, "description": "In after-call work."}},
                            ["live", "acw"]),
        }, ["id", "queue", "agents", "sessions"]),
    }


def status_section() -> Section:
    return Section(
        tag="Status",
        description="The live picture for operators and supervisors.",
        paths={"/api/v1/status": {"get": {
            "tags": ["Status"],
            "operationId": "getStatus",
            "summary": "The live picture",
            "description": "Per service: the queue, members by state and sessions; per "
                           "instance: version, uptime, jobs overdue, outbound queue. An API "
                           "key with the `reporting` scope sees the services it names; in "
                           "local mode no key is needed.",
            "security": [{"apiKey": []}],
            "responses": {
                "200": json_response("The picture now.", ref("StatusAnswer")),
                **errors({401: "No API key, or not a valid one.",
                          403: "The API key lacks the reporting scope.",
                          503: "The store is busy; retry with backoff."}),
            },
        }}},
        schemas=status_schemas(),
    )
