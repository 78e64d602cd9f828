"""How the tabs' tests call a page or its JSON: GET with an Authorization and an Accept."""

from __future__ import annotations

from typing import Any

from tests.support.world import World


async def get(world: World, path: str, authorization: str | None = None,
              accept_type: str = "application/json") -> tuple[int, str, Any]:
    """(status, text, JSON body or None) of `GET path`."""
    headers = {"Accept": accept_type}
    if authorization is not None:
        headers["Authorization"] = authorization
    async with world.client.get(world.server.make_url(path), headers=headers) as reply:
        text = await reply.text()
        body = await reply.json() if reply.content_type == "application/json" else None
        return reply.status, text, body
