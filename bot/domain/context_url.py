"""Fill a service's context URL template from a task's customer and parameters."""

from __future__ import annotations

import re
from urllib.parse import quote

from bot.domain.customer import Customer

_PLACEHOLDER = re.compile(r"\{(customer\.(?:name|email|phone)|param\.[A-Za-z0-9_.-]+)\}")


def context_url(template: str, customer: Customer | None) -> str | None:
    """The URL with every placeholder URL-encoded; None without a template or a customer."""
    if not template or customer is None:
        return None

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key.startswith("param."):
            raw = customer.params.get(key.removeprefix("param."), "")
        else:
            raw = getattr(customer, key.removeprefix("customer."))
        return quote(raw, safe="")

    return _PLACEHOLDER.sub(value, template)
