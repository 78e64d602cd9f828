"""A throttling HTTPS proxy in front of the Cosmos DB emulator, to see 429s handled for real.

It forwards everything to the emulator and answers `429 Too Many Requests` with
`x-ms-retry-after-ms` (as Cosmos DB does when a partition runs out of request units) to as many
requests as `throttle(n, when)` asks for, counting what it did. It serves the emulator's own
self-signed certificate on 127.0.0.1, which `azure-cosmos` accepts there, and rewrites the
account's endpoints so the client keeps talking to the proxy.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from typing import Self

from aiohttp import ClientSession, web

from tests.cosmos_server import PACKAGE, CosmosServer, free_port

Predicate = Callable[[web.Request], bool]

_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


def writes_to(container: str) -> Predicate:
    """Item writes (create, replace, upsert, patch, delete) to one container."""
    def match(request: web.Request) -> bool:
        return (request.method in ("POST", "PUT", "PATCH", "DELETE")
                and f"/colls/{container}/docs" in request.path
                and request.headers.get("x-ms-documentdb-isquery") != "True")
    return match


class ThrottlingProxy:
    def __init__(self, server: CosmosServer) -> None:
        self.server = server
        self.port = free_port()
        self.remaining = 0
        self.when: Predicate = lambda _request: False
        self.throttled = 0
        self.forwarded = 0
        self.retry_after_ms = 5
        self._runner: web.AppRunner | None = None
        self._client: ClientSession | None = None

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    def throttle(self, count: int, when: Predicate) -> None:
        self.remaining, self.when = count, when

    async def start(self) -> Self:
        self._client = ClientSession()
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(PACKAGE / "cert.pem", PACKAGE / "key.pem")
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=context).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    async def _handle(self, request: web.Request) -> web.Response:
        if self.remaining > 0 and self.when(request):
            self.remaining -= 1
            self.throttled += 1
            return web.json_response(
                {"code": "TooManyRequests", "message": "Request rate is large."}, status=429,
                headers={"x-ms-retry-after-ms": str(self.retry_after_ms),
                         "x-ms-substatus": "3200"})
        assert self._client is not None
        self.forwarded += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._client.request(
                request.method, self.server.endpoint.rstrip("/") + request.path_qs,
                headers=headers, data=await request.read(), ssl=False) as reply:
            body = await reply.read()
            if request.path == "/" and request.method == "GET":
                account = json.loads(body)
                text = json.dumps(account).replace(self.server.endpoint, self.endpoint)
                body = text.encode()
            out = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP_HEADERS}
            return web.Response(status=reply.status, body=body, headers=out)
