"""One HTTP request from a test, its answer as (status, JSON body or text)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from yarl import URL


async def post_json(client: aiohttp.ClientSession, url: str | URL, body: Any = None, *,
                    headers: dict[str, str] | None = None, data: bytes | None = None,
                    method: str = "POST", timeout: float = 30.0) -> tuple[int, Any]:
    """One request; (status, JSON body or text)."""
    kwargs: dict[str, Any] = {"headers": headers, "timeout": aiohttp.ClientTimeout(total=timeout)}
    if data is not None:
        kwargs["data"] = data
    elif body is not None:
        kwargs["json"] = body
    async with client.request(method, url, **kwargs) as response:
        text = await response.text()
        if response.content_type == "application/json":
            try:
                return response.status, json.loads(text)
            except ValueError:
                pass
        return response.status, text
