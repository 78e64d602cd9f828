"""Bodies of the task and privacy APIs checked field by field: a request, or Invalid naming the
field."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from bot.domain.customer import Customer
from bot.domain.errors import Invalid
from bot.services.external_tasks import ExternalRequest
from bot.services.ports import CustomerQuery

MAX_TITLE = 300
MAX_DESCRIPTION = 4_000
MAX_LINK = 2_048
MAX_CUSTOMER_FIELD = 320
MAX_PARAMS = 50
MAX_PARAM_NAME = 64
MAX_PARAM_VALUE = 1_024
MIN_PRIORITY, MAX_PRIORITY = -1_000, 1_000
FIELDS = ("service", "title", "description", "due", "link", "customer", "context", "priority")
CUSTOMER_FIELDS = ("name", "email", "phone")
PARAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # what {param.X} in a context URL can name


def parse_create(body: dict[str, Any]) -> tuple[str, ExternalRequest]:
    """(service id, request) from a JSON object; null counts as left out for optional fields."""
    unknown = [key for key in body if key not in FIELDS]
    if unknown:
        raise Invalid(f"Unknown field; the fields are {', '.join(FIELDS)}.",
                      field=str(unknown[0])[:64] or "(a field with an empty name)")
    service = _text(body, "service", 64, required=True)
    title = _text(body, "title", MAX_TITLE, required=True)
    return service, ExternalRequest(
        title=title,
        description=_text(body, "description", MAX_DESCRIPTION),
        due=_due(body.get("due")),
        link=_link(body.get("link")),
        customer=_customer(body.get("customer"), body.get("context")),
        priority=_priority(body.get("priority")),
    )


PATCH_FIELDS = ("customer", "context")
PRIVACY_FIELDS = ("customer",)


@dataclasses.dataclass(frozen=True)
class ContextChange:
    """PATCH /api/v1/tasks/{id}: customer fields given (None: left as they are), parameters."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    params: dict[str, str] = dataclasses.field(default_factory=dict)


def parse_patch(body: dict[str, Any]) -> ContextChange:
    unknown = [key for key in body if key not in PATCH_FIELDS]
    if unknown:
        raise Invalid(f"Unknown field; the fields are {', '.join(PATCH_FIELDS)}.",
                      field=str(unknown[0])[:64] or "(a field with an empty name)")
    given = _customer_fields(body.get("customer"))
    params = _params(body.get("context"))
    if not params and all(v is None for v in given.values()):
        raise Invalid("Give customer fields or context to set.", field="context")
    return ContextChange(name=given["name"], email=given["email"], phone=given["phone"],
                         params=params)


def parse_privacy(body: dict[str, Any]) -> CustomerQuery:
    """{"customer": {"email"?, "phone"?, "name"?}} with at least one of them."""
    unknown = [key for key in body if key not in PRIVACY_FIELDS]
    if unknown:
        raise Invalid("Unknown field; the request has only customer.",
                      field=str(unknown[0])[:64] or "(a field with an empty name)")
    if body.get("customer") is None:
        raise Invalid("This field is required.", field="customer")
    given = _customer_fields(body["customer"])
    if not any(given.values()):
        raise Invalid("Give the customer's email, phone or name.", field="customer")
    return CustomerQuery(email=given["email"] or "", phone=given["phone"] or "",
                         name=given["name"] or "")


def _customer_fields(value: Any) -> dict[str, str | None]:
    """The customer fields the object gives (None: not given)."""
    if value is None:
        return {key: None for key in CUSTOMER_FIELDS}
    if not isinstance(value, dict):
        raise Invalid("Must be an object with name, email and phone.", field="customer")
    for key in value:
        if key not in CUSTOMER_FIELDS:
            raise Invalid("Unknown field; a customer has name, email and phone.",
                          field=f"customer.{str(key)[:64] or '(empty name)'}")
    return {key: (_text(value, key, MAX_CUSTOMER_FIELD, label=f"customer.{key}")
                  if value.get(key) is not None else None) for key in CUSTOMER_FIELDS}


def _text(body: dict[str, Any], field: str, limit: int, *, required: bool = False,
          label: str | None = None) -> str:
    name = label or field
    value = body.get(field)
    if value is None:
        if required:
            raise Invalid("This field is required.", field=name)
        return ""
    if not isinstance(value, str):
        raise Invalid("Must be a string.", field=name)
    value = value.strip()
    if required and not value:
        raise Invalid("Must not be empty.", field=name)
    if len(value) > limit:
        raise Invalid(f"Must be at most {limit} characters.", field=name)
    return value


def _due(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise Invalid("Must be a date-time string like 2026-11-03T17:00:00Z.", field="due")
    try:
        due = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid("Must be an ISO 8601 date-time like 2026-11-03T17:00:00Z.",
                      field="due") from None
    if due.tzinfo is None:
        raise Invalid("Needs a time zone, e.g. 2026-11-03T17:00:00Z or +01:00.", field="due")
    try:
        return due.astimezone(UTC)
    except OverflowError:
        raise Invalid("Is out of range.", field="due") from None


def _link(value: Any) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise Invalid("Must be a string.", field="link")
    link = value.strip()
    try:
        parts = urlsplit(link)
    except ValueError:
        parts = None
    if (parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc
            or len(link) > MAX_LINK or any(c.isspace() for c in link)):
        raise Invalid(f"Must be an absolute http(s) URL of at most {MAX_LINK} characters.",
                      field="link")
    return link


def _customer(value: Any, context: Any) -> Customer:
    fields = {key: given or "" for key, given in _customer_fields(value).items()}
    return Customer(name=fields["name"], email=fields["email"], phone=fields["phone"],
                    params=_params(context))


def _params(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("Must be an object of names and string values.", field="context")
    if len(value) > MAX_PARAMS:
        raise Invalid(f"At most {MAX_PARAMS} entries.", field="context")
    params: dict[str, str] = {}
    for key, item in value.items():
        if not PARAM_NAME.match(key):
            raise Invalid("Names use letters, digits, '_', '.' and '-' (at most "
                          f"{MAX_PARAM_NAME}).", field=f"context.{key[:64]}")
        if not isinstance(item, str):
            raise Invalid("Must be a string.", field=f"context.{key}")
        if len(item) > MAX_PARAM_VALUE:
            raise Invalid(f"Must be at most {MAX_PARAM_VALUE} characters.",
                          field=f"context.{key}")
        params[key] = item
    return params


def _priority(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) \
            or not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise Invalid(f"Must be a whole number from {MIN_PRIORITY} to {MAX_PRIORITY}.",
                      field="priority")
    return value
