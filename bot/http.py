"""The HTTP layer every API shares: one error type and body, one mapping of refusals and a busy
store to statuses, bearer and API-key checks, and reading a JSON body every later step can take.

Every refusal answers `{"error": "<a sentence for the person>"}` (and `"field"` when one field
is at fault) as application/json, the body the OpenAPI document calls `Error`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import StreamReader, web

from bot import jsonio
from bot.domain.errors import Invalid, Refused
from bot.domain.service import ApiKey, Catalog
from bot.services.ports import ConflictError, StoreUnavailable

log = logging.getLogger(__name__)

# A \\uD800-\\uDFFF escape: the only way a lone surrogate gets past strict UTF-8 decoding.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

# The status of a use case's refusal, by its code; any other code is a conflict (409).
REFUSAL_STATUS = {"not_found": 404, "unauthorized": 401, "forbidden": 403, "invalid": 422,
                  "stale": 409, "too_many": 429}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CALLER = web.RequestKey("caller", str)
"""The request's key for who called, when a check knew (an API key's name): access lines."""


class HttpError(Exception):
    """A refusal: its status, a sentence for the person, the field at fault, extra headers."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}


class BadBody(HttpError):
    """The body cannot be taken (400 or 413)."""


def problem(status: int, message: str, *, field: str | None = None,
            headers: dict[str, str] | None = None) -> web.Response:
    """The one error answer: {"error": message} (and "field"), with `headers`."""
    body = {"error": message}
    if field is not None:
        body["field"] = field
    return web.json_response(body, status=status, headers=headers, dumps=jsonio.dumps)


# What `http_error` turns into an answer; anything else is a bug and stays a 500.
ANSWERED = (HttpError, Refused, ConflictError, StoreUnavailable)


def http_error(exc: Exception, busy: str) -> HttpError:
    """The answer to one of ANSWERED: a refusal by its code, a busy or absent store 503 `busy`."""
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, Invalid):
        return HttpError(422, exc.message, field=exc.field or None)
    if isinstance(exc, Refused):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return HttpError(REFUSAL_STATUS.get(exc.code, 409), exc.message, headers=headers)
    log.warning("request not processed: store busy or unavailable",
                extra={"error": type(exc).__name__})
    return HttpError(503, busy)


def answer(error: HttpError) -> web.Response:
    return problem(error.status, error.message, field=error.field, headers=error.headers)


def answering(handler: Handler, *, busy: str,
              render: Callable[[web.Request, HttpError], web.Response] | None = None) -> Handler:
    """`handler`, with refusals, HttpErrors and a busy store answered (see `http_error`) as
    the one error body, or as `render` draws them."""

    async def answered(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ANSWERED as exc:
            error = http_error(exc, busy)
            return render(request, error) if render is not None else answer(error)

    return answered


def bearer_token(request: web.Request, what: str = "an API key", shown: str = "key") -> str:
    """The token of `Authorization: Bearer <token>`; a 401 naming `what` without one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HttpError(401, f"Send {what} as 'Authorization: Bearer <{shown}>'.",
                        headers={"WWW-Authenticate": "Bearer"})
    return token


def api_key(request: web.Request, catalog: Catalog, scope: str) -> ApiKey:
    """The services file's API key the request bears (known by its SHA-256), if its scopes
    include `scope`; 401 without a valid key, 403 for a key without the scope."""
    token = bearer_token(request)
    key = catalog.api_key(hashlib.sha256(token.encode()).hexdigest())
    if key is None:
        raise HttpError(401, "The API key is not valid.",
                        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    request[CALLER] = key.name  # the access line names the key
    if not key.may(scope):
        raise HttpError(403, f"This API key may not use this API (its scopes leave out "
                             f"{scope!r}).")
    return key


def parse_json(raw: bytes) -> Any:
    """JSON from a request body: strict UTF-8, no lone surrogates (no store, log or reply
    could encode them), no nesting past Python's recursion limit, no integers past 4,300
    digits, no NaN or Infinity (JSON has none). BadBody(400) otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody(400, "The body is not valid UTF-8.") from None
    try:
        value = jsonio.loads(text, finite=True) if text.strip() else None
    except (ValueError, RecursionError):  # bad JSON, deep nesting, absurd numbers
        raise BadBody(400, "The body is not valid JSON.") from None
    if _SURROGATE_ESCAPE.search(text) and not _encodable(value):
        raise BadBody(400, "The body holds a lone surrogate (\\uD800-\\uDFFF), which is not "
                           "text: send valid Unicode.")
    return value


def _encodable(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


async def read_at_most(stream: StreamReader, limit: int) -> bytes:
    """The body up to `limit` + 1 bytes (one more says it is too long). `StreamReader.read(n)`
    answers with what has arrived so far, so a body that comes in pieces takes several reads."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def read_json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The request's body as a JSON object of at most `max_bytes`; BadBody otherwise."""
    too_large = f"The request is larger than {max_bytes // 1024} KB."
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadBody(413, too_large)
    raw = await read_at_most(request.content, max_bytes)
    if len(raw) > max_bytes:
        raise BadBody(413, too_large)
    body = parse_json(raw) if raw else {}
    if not isinstance(body, dict):
        raise BadBody(400, "The body must be a JSON object.")
    return body


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: an address no network outside this machine reaches."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
