"""The base of every stand-in: an aiohttp application on 127.0.0.1, an ephemeral port."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from aiohttp import web


class StandinServer:
    """Subclasses add their routes in `routes`; `async with` or `start()` / `close()`."""

    client_max_size = 1024 * 1024  # aiohttp's default: bodies larger are answered 413
    backlog = 128  # connections waiting to be accepted (the bench's stand-in takes more)

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self, *, port: int = 0) -> Self:
        """Listen on 127.0.0.1 (an ephemeral port unless ``port`` is given)."""
        app = web.Application(client_max_size=self.client_max_size)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=self.backlog)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def error(status: int, code: str, message: str,
          headers: Mapping[str, str] | None = None) -> web.Response:
    """An error the way Microsoft's APIs answer one: {"error": {"code", "message"}}."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             headers=headers)


async def json_object(request: web.Request) -> dict[str, Any] | None:
    """The request's body if it is a JSON object, else None."""
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None
