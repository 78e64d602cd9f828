"""Read the `[[service.web_request]]` tables of the services file.

`bot.config` calls `parse_web_requests(reader)` with its reader of one service table; every error
names the file, the key and the problem, like the rest of the services file.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from bot.domain.durations import parse_duration
from bot.domain.webhooks.model import METHODS, BodyFormat, Trigger, WebRequest
from bot.domain.webhooks.template import PLACEHOLDER, body_format, unknown_placeholders

KEYS = ("on", "method", "url", "headers", "body", "secret", "timeout", "response")
MAX_RESPONSE_PARAMS = 20
PARAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # what {param.X} can name
# The JSONPath subset of response mappings: $ then .key or [n] steps, e.g. $.items[0].id.
_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d{1,6})\]")
DEFAULT_TIMEOUT = timedelta(seconds=10)
MIN_TIMEOUT = timedelta(seconds=1)
# Below the effect job's 30 s lease, so one attempt never outlives the job's claim on the task.
MAX_TIMEOUT = timedelta(seconds=20)
MIN_SECRET = 16
# Set by the sender on every request: a template may not set them.
RESERVED_HEADERS = ("idempotency-key", "x-switchboard-event", "x-switchboard-signature",
                    "x-switchboard-timestamp", "content-length", "host", "transfer-encoding")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# A secret kept out of the services file: filled from the environment when the file loads.
ENV_PLACEHOLDER = re.compile(r"\{env\.([A-Za-z_][A-Za-z0-9_]*)\}")


Fail = Callable[[str, str], Exception]


class TableReader(Protocol):
    """The part of `bot.config._Reader` used here."""

    data: Mapping[str, Any]
    environ: Mapping[str, str]

    def fail(self, key: str, problem: str) -> Exception: ...


def _sample(text: str) -> str:
    """The text with every placeholder filled with a harmless value, to check its shape."""
    return PLACEHOLDER.sub("x", text)


def parse_web_requests(r: TableReader) -> tuple[WebRequest, ...]:
    raw = r.data.get("web_request", [])
    if not isinstance(raw, list):
        raise r.fail("web_request", "must be an array of tables ([[service.web_request]])")
    return tuple(_parse_one(r, f"web_request[{index}]", item) for index, item in enumerate(raw))


def _parse_one(r: TableReader, where: str, item: object) -> WebRequest:
    def fail(key: str, problem: str) -> Exception:
        return r.fail(f"{where}.{key}" if key else where, problem)

    if not isinstance(item, dict):
        raise fail("", "must be a table")
    for key in item:
        if key not in KEYS:
            raise fail(key, f"unknown key (use {', '.join(KEYS)})")

    def text(key: str, default: str | None = None) -> str:
        value = item.get(key, default)
        if value is None:
            raise fail(key, "is required")
        if not isinstance(value, str):
            raise fail(key, f"must be a string, got {value!r}")
        bad = unknown_placeholders(value)
        if bad:
            raise fail(key, f"unknown placeholder {bad[0]}")
        if ENV_PLACEHOLDER.search(value):  # else it would go out as that text
            raise fail(key, "{env.…} may stand only in secret and in header values")
        return value

    on_text = text("on")
    try:
        on = Trigger(on_text)
    except ValueError:
        raise fail("on", f"{on_text!r} is not one of "
                         f"{', '.join(t.value for t in Trigger)}") from None
    method = text("method", "POST").upper()
    if method not in METHODS:
        raise fail("method", f"{method!r} is not one of {', '.join(METHODS)}")
    url = text("url")
    _check_url(url, fail)
    headers, secret_headers = _headers(item.get("headers", {}), r.environ, fail)
    body = text("body", "")
    if body and method == "GET":
        raise fail("body", "a GET request has no body")
    fmt = body_format(dict(headers))
    if body and fmt is BodyFormat.JSON:
        try:
            json.loads(_sample(body))
        except ValueError as exc:
            raise fail("body", f"is not JSON once placeholders are filled ({exc}); put "
                               "placeholders inside JSON strings") from None
    secret = item.get("secret", "")
    if not isinstance(secret, str):
        raise fail("secret", "must be a string")
    secret = _from_environment(secret, r.environ, functools.partial(fail, "secret"))
    if secret and len(secret) < MIN_SECRET:
        raise fail("secret", f"must be at least {MIN_SECRET} characters")
    timeout = DEFAULT_TIMEOUT
    if "timeout" in item:
        try:
            timeout = parse_duration(item["timeout"])
        except ValueError as exc:
            raise fail("timeout", str(exc)) from None
        if not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
            raise fail("timeout", f"must be between {int(MIN_TIMEOUT.total_seconds())}s and "
                                  f"{int(MAX_TIMEOUT.total_seconds())}s")
    return WebRequest(on=on, method=method, url=url, headers=headers, body=body,
                      body_format=fmt, secret=secret, timeout=timeout,
                      secret_headers=secret_headers,
                      response_params=_response(item.get("response"), on, fail))


def parse_path(text: str) -> tuple[str | int, ...] | None:
    """`$.a.b[0]` as ("a", "b", 0); None when it is not in the subset."""
    if not text.startswith("$"):
        return None
    steps: list[str | int] = []
    at = 1
    while at < len(text):
        match = _STEP.match(text, at)
        if match is None:
            return None
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        at = match.end()
    return tuple(steps) if steps else None


ResponseParams = tuple[tuple[str, tuple[str | int, ...]], ...]


def _response(raw: object, on: Trigger, fail: Fail) -> ResponseParams:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or set(raw) - {"params"}:
        raise fail("response", "must be a table with params = { Name = \"$.path\" }")
    if on is not Trigger.RINGING:
        raise fail("response", "only a ringing request's answer can fill parameters")
    params = raw.get("params", {})
    if not isinstance(params, dict) or len(params) > MAX_RESPONSE_PARAMS:
        raise fail("response.params", f"must map at most {MAX_RESPONSE_PARAMS} parameter "
                                      "names to paths like \"$.customer.tier\"")
    mapped: list[tuple[str, tuple[str | int, ...]]] = []
    for name, path in params.items():
        if not PARAM_NAME.match(name):
            raise fail("response.params", f"{name!r} is not a parameter name (letters, "
                                          "digits, '_', '.', '-')")
        steps = parse_path(path) if isinstance(path, str) else None
        if steps is None:
            raise fail(f"response.params.{name}", f"{path!r} is not a path like \"$.id\", "
                                                   "\"$.customer.tier\" or \"$.items[0].id\"")
        mapped.append((name, steps))
    return tuple(mapped)


def _from_environment(text: str, environ: Mapping[str, str],
                      fail: Callable[[str], Exception]) -> str:
    """`text` with each `{env.NAME}` filled from the environment; errors name the variable,
    never its value."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = environ.get(name, "")
        if not found:
            raise fail(f"the environment variable {name} is not set")
        if any(c in found for c in "\r\n\0"):
            raise fail(f"the environment variable {name} must be one line")
        return found

    return ENV_PLACEHOLDER.sub(value, text)


def _check_url(url: str, fail: Fail) -> None:
    if any(c.isspace() or ord(c) > 126 for c in url):
        raise fail("url", "must not contain spaces or non-ASCII characters (percent-encode "
                          "them)")
    parts = urlsplit(_sample(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise fail("url", f"{url!r} is not an http:// or https:// URL")
    origin = urlsplit(url)
    if "{" in f"{origin.scheme}://{origin.netloc}":
        # The host comes from the services file only: no value can send a request elsewhere.
        raise fail("url", "placeholders may stand in the path, query or fragment, not in the "
                          "scheme or host")
    if origin.username is not None or origin.password is not None:
        raise fail("url", "must not carry credentials; use headers")


def _headers(raw: object, environ: Mapping[str, str], fail: Fail,
             ) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(headers rendered with each delivery, headers filled from the environment)."""
    if not isinstance(raw, dict):
        raise fail("headers", "must be a table of header names and values")
    headers: list[tuple[str, str]] = []
    secret_headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in raw.items():
        if not _TOKEN.match(name):
            raise fail(f"headers.{name}", "is not a valid header name")
        if name.lower() in RESERVED_HEADERS:
            raise fail(f"headers.{name}", "is set by Switchboard itself")
        if name.lower() in seen:
            raise fail(f"headers.{name}", "is given twice")
        seen.add(name.lower())
        if not isinstance(value, str):
            raise fail(f"headers.{name}", f"must be a string, got {value!r}")
        if any(c in value for c in "\r\n"):
            raise fail(f"headers.{name}", "must be one line")
        bad = unknown_placeholders(value)
        if bad:
            raise fail(f"headers.{name}", f"unknown placeholder {bad[0]}")
        if ENV_PLACEHOLDER.search(value):
            if PLACEHOLDER.search(value):  # a value could otherwise smuggle in `{env.…}`
                raise fail(f"headers.{name}", "takes {env.…} or other placeholders, not both")
            if name.lower() == "content-type":  # it decides how the body escapes values
                raise fail(f"headers.{name}", "comes from the file, not the environment")
            secret_headers.append((name, _from_environment(
                value, environ, functools.partial(fail, f"headers.{name}"))))
        else:
            headers.append((name, value))
    return tuple(headers), tuple(secret_headers)
