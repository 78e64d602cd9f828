"""Placeholders of web-request templates: which exist, how each part escapes them, rendering.

`{task.id}` style placeholders are filled from the task, the session, the customer context and
the event. Each part of a request escapes values its own way, so a value can never change the
shape of the request:

- url: percent-encoded (`quote(value, safe="")`), so a value is always one path segment or one
  query value, never a `/`, `?`, `&` or `#`.
- headers: control characters (CR, LF...) become spaces, so a value cannot start a new header.
- body: by the Content-Type header. JSON (`application/json`, `*/*+json`, the default when a
  body has no Content-Type): JSON-string-escaped without the quotes, so a placeholder belongs
  inside a JSON string (`"name": "{customer.name}"`); form (`application/x-www-form-urlencoded`):
  form-encoded; anything else: as is.

Only names of the listed shapes are placeholders: other braces (a JSON body's own) stay as they
are, with no escaping needed. An unknown `{task.x}` is an error when the services file loads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus

from bot.domain.agent import Agent
from bot.domain.customer import Customer
from bot.domain.service import Service
from bot.domain.session import Session
from bot.domain.task import Task
from bot.domain.webhooks.model import BodyFormat, Trigger, WebRequest

FIELDS: tuple[str, ...] = (
    "task.id", "task.service", "task.modality",
    "service.id", "service.name",
    "session.id", "session.agent", "session.agent_name", "session.result", "session.phase",
    "session.primary_code", "session.secondary_code", "session.tags",
    "customer.name", "customer.email", "customer.phone",
    "event.name", "event.at",
    "delivery.id",
)
# `{param.X}` adds the custom parameter X (letters, digits, `_ . -`), as in context URLs.
PLACEHOLDER = re.compile(
    r"\{((?:task|service|session|customer|event|delivery)\.[A-Za-z0-9_]+"
    r"|param\.[A-Za-z0-9_.-]+)\}")
_CANDIDATE = re.compile(r"\{((?:task|service|session|customer|event|delivery|param)\.[^{}]*)\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unknown_placeholders(text: str) -> list[str]:
    """Placeholder-looking names in `text` that are not placeholders, as `{name}`."""
    found = []
    for match in _CANDIDATE.finditer(text):
        name = match.group(1)
        if name.startswith("param."):
            if not PLACEHOLDER.fullmatch("{" + name + "}"):
                found.append("{" + name + "}")
        elif name not in FIELDS:
            found.append("{" + name + "}")
    return found


def body_format(headers: Mapping[str, str]) -> BodyFormat:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    media = content_type.split(";", 1)[0].strip().lower()
    if not media or media == "application/json" or media.endswith("+json"):
        return BodyFormat.JSON
    if media == "application/x-www-form-urlencoded":
        return BodyFormat.FORM
    return BodyFormat.TEXT


def json_text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)[1:-1]


def header_text(value: str) -> str:
    return _CONTROL.sub(" ", value)


def url_text(value: str) -> str:
    return quote(value, safe="")


def _as_is(value: str) -> str:
    return value


_BODY_ESCAPES: dict[BodyFormat, Callable[[str], str]] = {
    BodyFormat.JSON: json_text, BodyFormat.FORM: quote_plus, BodyFormat.TEXT: _as_is}


def fill(text: str, values: Mapping[str, str], params: Mapping[str, str],
         escape: Callable[[str], str] = _as_is) -> str:
    """`text` with each placeholder replaced by its escaped value (unknown values: empty)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("param."):
            raw = params.get(name.removeprefix("param."), "")
        else:
            raw = values.get(name, "")
        return escape(raw)

    return PLACEHOLDER.sub(value, text)


@dataclass(frozen=True)
class Rendered:
    method: str
    url: str
    headers: dict[str, str]
    body: str


def render(request: WebRequest, values: Mapping[str, str],
           params: Mapping[str, str]) -> Rendered:
    """The request with every placeholder filled and escaped for where it stands."""
    headers = {name: fill(text, values, params, header_text) for name, text in request.headers}
    body = fill(request.body, values, params, _BODY_ESCAPES[request.body_format])
    if body and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json; charset=utf-8"
    return Rendered(method=request.method, url=fill(request.url, values, params, url_text),
                    headers=headers, body=body)


def moment(at: datetime) -> str:
    """`event.at`: ISO 8601 in UTC with milliseconds, e.g. 2026-11-02T09:00:00.000Z."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def values_for(*, task: Task, service: Service, session: Session | None, agent: Agent | None,
               customer: Customer, trigger: Trigger, at: datetime, key: str) -> dict[str, str]:
    """Every placeholder's value (parameters apart): ids, states, the customer context given."""
    return {
        "task.id": task.id,
        "task.service": task.service_id,
        "task.modality": task.modality.value,
        "service.id": service.id,
        "service.name": service.name,
        "session.id": session.id if session else "",
        "session.agent": (agent.upn if agent and agent.upn else None)
        or (session.agent_id if session else ""),
        "session.agent_name": agent.name if agent else "",
        "session.result": session.result.value if session and session.result else "",
        "session.phase": session.phase.value if session else "",
        "session.primary_code": (session.primary_code or "") if session else "",
        "session.secondary_code": (session.secondary_code or "") if session else "",
        "session.tags": ", ".join(session.tags) if session else "",
        "customer.name": customer.name,
        "customer.email": customer.email,
        "customer.phone": customer.phone,
        "event.name": trigger.value,
        "event.at": moment(at),
        "delivery.id": key,
    }
