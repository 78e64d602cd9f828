"""HTTP plumbing the APIs share: reading a JSON body that every later step can take."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

# A \\uD800-\\uDFFF escape: the only way a lone surrogate gets past strict UTF-8 decoding.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class BadBody(Exception):
    """The body cannot be taken: its status (400 or 413) and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_json(raw: bytes) -> Any:
    """JSON from a request body: strict UTF-8, no lone surrogates (no store, log or reply
    could encode them), no nesting past Python's recursion limit, no integers past 4,300
    digits. BadBody(400) otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody(400, "The body is not valid UTF-8.") from None
    try:
        value = json.loads(text) if text.strip() else None
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


async def read_json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The request's body as a JSON object of at most `max_bytes`; BadBody otherwise."""
    too_large = f"The request is larger than {max_bytes // 1024} KB."
    if request.content_length is not None and request.content_length > max_bytes:
        raise BadBody(413, too_large)
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise BadBody(413, too_large)
    body = parse_json(raw) if raw else {}
    if not isinstance(body, dict):
        raise BadBody(400, "The body must be a JSON object.")
    return body
