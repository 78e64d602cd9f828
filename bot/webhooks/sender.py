"""The effect job `webhook:<task id>`: send the task's oldest pending request, record the outcome.

One HTTP attempt per run. Its outcome is recorded in a unit of work that also arms the job again:
at once when another request of the task waits, after the backoff when this one failed. The
job's lease (30 s) outlasts the longest attempt (timeouts are capped at 20 s), so one task's
requests never go out two at a time, and they go in the order they were queued. A crash between
the answer and its record sends the request again later with the same Idempotency-Key: at least
once, and receivers drop the repeat by that key.

Logs say which task, service, template and moment, the method, the target's scheme and host
(which come from the services file only: placeholders may not stand there), the status and the
time taken; never the path, query, headers or body, which may carry customer data.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from bot.domain.retry import parse_retry_after
from bot.domain.timers import Timer
from bot.domain.webhooks.model import Delivery, WebRequest
from bot.domain.webhooks.signing import sign
from bot.http import read_at_most
from bot.services import outbox
from bot.services.engine import Engine
from bot.services.outbox import Outcome

log = logging.getLogger(__name__)

USER_AGENT = "Switchboard-Webhooks/1"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Switchboard-Event"
RETRY_STATUSES = frozenset({408, 425, 429})  # and every 5xx, and no answer at all


def is_permanent(status: int) -> bool:
    """A 3xx (redirects are not followed) or a 4xx other than 408/425/429: retrying won't help."""
    return 300 <= status < 500 and status not in RETRY_STATUSES


def target(url_template: str) -> str:
    parts = urlsplit(url_template)
    return f"{parts.scheme}://{parts.netloc}"


class WebhookSender:
    def __init__(self, engine: Engine, http: aiohttp.ClientSession) -> None:
        self.engine = engine
        self.http = http

    def template(self, delivery: Delivery) -> WebRequest | None:
        service = self.engine.catalog.services.get(delivery.service_id)
        if service is None or delivery.template >= len(service.web_requests):
            return None
        template = service.web_requests[delivery.template]
        return template if template.on is delivery.trigger else None

    async def deliver(self, timer: Timer) -> None:
        delivery = await self.engine.read(outbox.head, timer.ref)
        if delivery is None:
            return
        now = self.engine.clock.now()
        if delivery.not_before is not None and delivery.not_before > now:
            await self.engine.run(outbox.not_yet, timer.ref, delivery.not_before)
            return
        template = self.template(delivery)
        fields = {**outbox.customer_free(delivery),
                  "target": target(template.url) if template else "?"}
        if delivery.signed and (template is None or not template.secret):
            # The template is gone or lost its secret: never send unsigned what was to be signed.
            log.warning("web request dropped: its template changed", extra=fields)
            await self.engine.run(outbox.attempt_failed, delivery,
                                  Outcome(status=0, error="TemplateChanged", permanent=True))
            return
        outcome = await self.attempt(delivery, template, now, fields)
        if 200 <= outcome.status < 300:
            await self.engine.finish(timer, outbox.delivered, delivery, outcome)
            return
        gave_up = await self.engine.run(outbox.attempt_failed, delivery, outcome)
        if gave_up:
            log.error("web request failed", extra={**fields, "status": outcome.status})

    async def attempt(self, delivery: Delivery, template: WebRequest | None, now: datetime,
                      fields: dict[str, object]) -> Outcome:
        body = delivery.body.encode("utf-8")
        headers = {**delivery.headers, "User-Agent": USER_AGENT,
                   IDEMPOTENCY_HEADER: delivery.key, EVENT_HEADER: delivery.trigger.value}
        if template is not None:
            headers.update(template.secret_headers)
            if template.secret:
                headers.update(sign(template.secret, int(now.timestamp()), body))
        started = time.monotonic()
        try:
            async with self.http.request(
                    delivery.method, URL(delivery.url, encoded=True), data=body or None,
                    headers=headers, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=delivery.timeout)) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"),
                                                now.timestamp())
                params: dict[str, str] = {}
                if template is not None and template.response_params and 200 <= status < 300:
                    params = mapped(template, await _json_answer(response))
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            elapsed = round((time.monotonic() - started) * 1000)
            log.warning("web request got no answer",
                        extra={**fields, "error": type(exc).__name__, "ms": elapsed})
            return Outcome(status=0, error=type(exc).__name__)
        elapsed = round((time.monotonic() - started) * 1000)
        ok = 200 <= status < 300
        retry = {"retry_after": retry_after} if retry_after is not None and not ok else {}
        (log.debug if ok else log.warning)(  # as every outbound call: failures at WARNING
            "web request sent" if ok else "web request refused",
            extra={**fields, "status": status, "ms": elapsed, **retry})
        return Outcome(status=status, retry_after=retry_after, permanent=is_permanent(status),
                       params=params)


MAX_ANSWER_BYTES = 64 * 1024  # a JSON answer to map from; a longer one maps to nothing
MAX_PARAM_VALUE = 1_024


async def _json_answer(response: aiohttp.ClientResponse) -> Any:
    """The answer's JSON, or None when it is not JSON or too long (it fills nothing then)."""
    if response.content_length is not None and response.content_length > MAX_ANSWER_BYTES:
        return None
    raw = await read_at_most(response.content, MAX_ANSWER_BYTES)
    if len(raw) > MAX_ANSWER_BYTES:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _at(value: Any, steps: tuple[str | int, ...]) -> Any:
    """What the path finds in the JSON value; None when a step finds nothing."""
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return None
        elif not isinstance(value, dict) or step not in value:
            return None
        value = value[step]
    return value


def mapped(template: WebRequest, answer: Any) -> dict[str, str]:
    """The parameters a JSON answer fills: strings, numbers and booleans found at the paths
    (as text); a path that finds nothing, or an object or list, fills nothing."""
    found: dict[str, str] = {}
    for name, steps in template.response_params:
        value = _at(answer, steps)
        if isinstance(value, bool):
            found[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            found[name] = str(value)[:MAX_PARAM_VALUE]
    return found
