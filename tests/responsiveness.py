"""How long /healthz takes while something heavy runs: the event loop is never held up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from yarl import URL


@contextlib.asynccontextmanager
async def healthz_delays(client: aiohttp.ClientSession, url: URL | str,
                         pause: float = 0.005) -> AsyncIterator[list[float]]:
    """Probe `url` (a /healthz) back to back while the block runs; the list fills with each
    answer's seconds (every answer must be a 200)."""
    loop = asyncio.get_running_loop()
    delays: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            began = loop.time()
            async with client.get(url) as response:
                assert response.status == 200
            delays.append(loop.time() - began)
            await asyncio.sleep(pause)

    prober = asyncio.create_task(probe())
    try:
        yield delays
    finally:
        done.set()
        await prober
