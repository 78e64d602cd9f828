"""Closed-loop load on POST /api/messages: message activities that each earn one reply.

Every activity carries a token ``q<n>x`` that the reply repeats (the echo bots echo it,
Switchboard names the unknown command), so the connector stand-in can tell a lost reply
from a duplicated one.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import aiohttp

_tokens = itertools.count(1)


@dataclass
class FloodResult:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    measured: int = 0  # answered inside the measurement window
    seconds: float = 0.0
    window: tuple[float, float] = (0.0, 0.0)
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.measured / self.seconds if self.seconds else 0.0


def message(service_url: str, n: int, conversation: int) -> dict[str, object]:
    return {
        "type": "message",
        "id": f"flood-{n}",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": f"29:flood-{conversation}", "name": f"User {conversation}"},
        "recipient": {"id": "28:bench-bot", "name": "Bot"},
        "conversation": {"id": f"a:flood-{conversation}", "conversationType": "personal",
                         "tenantId": "bench-tenant"},
        "channelData": {"tenant": {"id": "bench-tenant"}},
        "text": f"q{n}x",
        "textFormat": "plain",
    }


async def flood(bot_url: str, service_url: str, *, concurrency: int, conversations: int,
                warmup: float, duration: float) -> FloodResult:
    """`concurrency` senders back to back for warmup + duration seconds; count the window."""
    result = FloodResult(seconds=duration)
    url = f"{bot_url}/api/messages"
    start = time.monotonic()
    window = (start + warmup, start + warmup + duration)
    result.window = window

    async def sender(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < window[1]:
            n = next(_tokens)
            result.sent += 1
            began = time.monotonic()
            try:
                async with http.post(url, json=message(service_url, n, n % conversations)) \
                        as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            ended = time.monotonic()
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                result.ok += 1
                if window[0] <= ended < window[1]:
                    result.measured += 1
                    result.latencies.append(ended - began)
            else:
                result.failed += 1

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as http:
        await asyncio.gather(*(sender(http) for _ in range(concurrency)))
    return result
