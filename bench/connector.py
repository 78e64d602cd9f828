"""The Bot Connector stand-in of the tests (tests/standins/connector.py) for the bench: in the
driver (the flow phases: agents react to the cards it receives), or as its own process,
``python -m bench.connector --port N`` (the throughput phases, so that the bots measured do
not share an event loop with the load generator). In its own process it counts the flood's
tokens and answers ``GET /_bench/stats``, ``POST /_bench/reset`` and ``POST /_bench/limits
{"enforce": bool, "time_scale": float}``.

Its limits are written there again on purpose, independent of ``bot.teams.ratelimit``, so the
stand-in checks Switchboard's limiter instead of mirroring it. Only accepted requests count
towards the windows; a refused one gets 429 with a fractional Retry-After.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from aiohttp import web

from bench.sidecar import run_sidecar
from tests.standins.connector import ConnectorStandin

TENANT_RATE = 50.0  # requests per second: the binding limit when many conversations are busy
TOKEN = re.compile(r"\bq(\d+)x\b")  # the throughput phases tag each activity with q<n>x


def bench_connector(*, enforce: bool = False, time_scale: float = 1.0) -> ConnectorStandin:
    """The stand-in as the bench runs it: no activity kept (only counts and listeners), a
    large accept backlog, Retry-After to the millisecond."""
    connector = ConnectorStandin(enforce_limits=enforce, time_scale=time_scale, record=False,
                                 fractional_retry_after=True)
    connector.backlog = 1024
    return connector


class Sink(ConnectorStandin):
    """The stand-in in its own process: counts the flood's tokens, answers /_bench/."""

    backlog = 1024

    def __init__(self) -> None:
        super().__init__(record=False, fractional_retry_after=True)
        self.tokens: Counter[int] = Counter()
        self.listeners.append(self._count)

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/_bench/stats", self._stats)
        app.router.add_post("/_bench/reset", self._reset)
        app.router.add_post("/_bench/limits", self._limits)

    def _count(self, method: str, cid: str, activity: dict[str, Any], at: float) -> None:
        for match in TOKEN.finditer(str(activity.get("text") or "")):
            self.tokens[int(match.group(1))] += 1

    def stats(self) -> dict[str, Any]:
        duplicated = sum(n - 1 for n in self.tokens.values() if n > 1)
        return {"requests": self.requests, "throttled": self.throttled,
                "throttled_by": dict(self.throttled_by), "posts": self.posts,
                "puts": self.puts, "accepted_times": self.accepted_times,
                "tokens": len(self.tokens), "token_duplicates": duplicated}

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset_counts()
        self.tokens.clear()
        return web.json_response({"ok": True})

    async def _limits(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.set_limits(bool(body.get("enforce")), float(body.get("time_scale", 1.0)))
        return web.json_response({"ok": True})


def peak_per_window(times: list[float], seconds: float = 1.0) -> int:
    """The most of `times` (ascending) inside any window (t - seconds, t]: the stand-in's own
    sliding-window rule."""
    peak = first = 0
    for last, at in enumerate(times):
        while times[first] <= at - seconds:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def tenant_share(times: list[float], start: float, end: float) -> float:
    """Accepted requests per second in [start, end) as a share of the 50/s tenant limit."""
    inside = [t for t in times if start <= t < end]
    if end <= start:
        return 0.0
    return len(inside) / (end - start) / TENANT_RATE


async def _start(port: int) -> str:
    connector = await Sink().start(port=port)
    return f"connector on {connector.service_url}"


def main() -> None:
    run_sidecar(__doc__, _start)


if __name__ == "__main__":
    main()
