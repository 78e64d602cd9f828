"""A web-request receiver on 127.0.0.1: records what arrives, checks signatures, dedupes by
Idempotency-Key, and can be told to fail (a status, a slow answer) or to go away altogether
(connection refused) and come back on the same port."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from bot.domain.webhooks.signing import verify


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    signed_ok: bool | None  # None: the receiver has no secret for this path

    @property
    def key(self) -> str:
        return self.headers.get("Idempotency-Key", "")

    @property
    def event(self) -> str:
        return self.headers.get("X-Switchboard-Event", "")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


Answer = Callable[[Received], int]


@dataclass
class Receiver:
    secrets: dict[str, str] = field(default_factory=dict)  # path prefix -> secret
    answer: Answer | None = None  # status to answer; None: 200
    delay: float = 0.0  # seconds before answering (after recording)
    now: Callable[[], float] | None = None  # the clock signatures are checked against
    hits: list[Received] = field(default_factory=list)  # every request, in arrival order
    accepted: list[Received] = field(default_factory=list)  # first 2xx per key, in order
    answered: Counter[str] = field(default_factory=Counter)  # 2xx answers per key (repeats)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner

    async def stop(self) -> None:
        """Down: connections to the port are refused until `start()` again."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def secret_for(self, path: str) -> str | None:
        for prefix, secret in self.secrets.items():
            if path.startswith(prefix):
                return secret
        return None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        secret = self.secret_for(request.path)
        checked = None
        if secret is not None:
            now = self.now() if self.now else time.time()
            checked = verify(secret, request.headers, body, now=now)
        got = Received(method=request.method, path=request.path,
                       query=parse_qs(urlsplit(str(request.rel_url)).query),
                       headers=dict(request.headers), body=body, signed_ok=checked)
        self.hits.append(got)
        status = self.answer(got) if self.answer is not None else 200
        if 200 <= status < 300:  # processed: a repeat of a key is counted, not processed again
            if got.key not in self.answered:
                self.accepted.append(got)
            self.answered[got.key] += 1
        if self.delay:  # processed, but slow to say so
            await asyncio.sleep(self.delay)
        return web.Response(status=status, text="ok" if status < 300 else "no")

    def attempts(self, key: str) -> int:
        return sum(1 for hit in self.hits if hit.key == key)
