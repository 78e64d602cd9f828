"""A lean Bot Connector stand-in: accepts posts, updates and member lookups, can enforce the
Teams limits, counts everything, and tells listeners what arrived (with the arrival time).

It runs inside the driver (the flow phases: agents react to the cards it receives) or as its
own process, ``python -m bench.connector --port N`` (the throughput phases, so that the bots
measured do not share an event loop with the load generator). In its own process it answers
``GET /_bench/stats``, ``POST /_bench/reset`` and ``POST /_bench/limits {"enforce": bool,
"time_scale": float}``.

The limits are written here again on purpose, independent of ``bot.teams.ratelimit``, so the
stand-in checks Switchboard's limiter instead of mirroring it. Only accepted requests count
towards the windows; a refused one gets 429 with a (fractional) Retry-After.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import re
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

# Teams, per bot: send to a conversation, and per app per tenant (PLATFORM-NOTES.md).
SEND_WINDOWS: tuple[tuple[int, float], ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
MEMBER_WINDOWS: tuple[tuple[int, float], ...] = ((14, 1.0), (16, 2.0), (120, 30.0),
                                                 (3600, 3600.0))
TENANT_WINDOWS: tuple[tuple[int, float], ...] = ((50, 1.0),)
TENANT_RATE = 50.0  # requests per second: the binding limit when many conversations are busy

TOKEN = re.compile(r"\bq(\d+)x\b")  # the throughput phases tag each activity with q<n>x

Listener = Callable[[str, str, dict[str, Any], float], None]
"""(method, conversation id, activity, arrival time.monotonic()) for every accepted post/put."""


class Windows:
    """Accepted-request times per key, checked against (count, seconds) sliding windows."""

    def __init__(self, windows: tuple[tuple[int, float], ...], time_scale: float) -> None:
        self.windows = tuple((count, seconds * time_scale) for count, seconds in windows)
        self.horizon = max(seconds for _, seconds in self.windows)
        self.logs: dict[str, list[float]] = {}

    def wait(self, key: str, now: float) -> float:
        """0.0 if one more request for ``key`` fits now, else seconds until it would."""
        log = self.logs.get(key)
        if not log:
            return 0.0
        wait = 0.0
        for count, seconds in self.windows:
            first = bisect_right(log, now - seconds)
            inside = len(log) - first
            if inside >= count:
                wait = max(wait, log[len(log) - count] + seconds - now)
        return wait

    def add(self, key: str, now: float) -> None:
        log = self.logs.setdefault(key, [])
        log.append(now)
        if len(log) > 4096:  # trim what no window can see any more
            del log[: bisect_right(log, now - self.horizon)]


class Connector:
    def __init__(self, *, enforce: bool = False, time_scale: float = 1.0) -> None:
        self.directory: dict[str, dict[str, Any]] = {}
        self.listeners: list[Listener] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.set_limits(enforce, time_scale)
        self.reset()

    # -- knobs ------------------------------------------------------------------------------

    def set_limits(self, enforce: bool, time_scale: float = 1.0) -> None:
        self.enforce = enforce
        self.time_scale = time_scale
        self._send = Windows(SEND_WINDOWS, time_scale)
        self._members = Windows(MEMBER_WINDOWS, time_scale)
        self._tenant = Windows(TENANT_WINDOWS, time_scale)

    def reset(self) -> None:
        self.requests = 0
        self.accepted_times: list[float] = []  # every accepted request (tenant bucket)
        self.arrival_times: list[float] = []  # every request, also those answered 429
        self.throttled = 0
        self.throttled_by = {"tenant": 0, "conversation": 0}
        self.posts = 0
        self.puts = 0
        self.tokens: Counter[int] = Counter()

    def add_member(self, user_id: str, name: str, upn: str, aad: str) -> None:
        self.directory[user_id] = {"id": user_id, "name": name, "userPrincipalName": upn,
                                   "email": upn, "aadObjectId": aad}

    def stats(self) -> dict[str, Any]:
        duplicated = sum(n - 1 for n in self.tokens.values() if n > 1)
        return {"requests": self.requests, "throttled": self.throttled,
                "throttled_by": self.throttled_by, "posts": self.posts,
                "puts": self.puts, "accepted_times": self.accepted_times,
                "tokens": len(self.tokens), "token_duplicates": duplicated}

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, port: int = 0, *, control: bool = False) -> Connector:
        app = web.Application(client_max_size=1024 * 1024)
        base = "/v3/conversations/{cid}"
        app.router.add_post(base + "/activities", self._post)
        app.router.add_post(base + "/activities/{aid}", self._post)
        app.router.add_put(base + "/activities/{aid}", self._put)
        app.router.add_get(base + "/members/{uid}", self._member)
        app.router.add_post("/v3/conversations", self._create)
        if control:
            app.router.add_get("/_bench/stats", self._stats)
            app.router.add_post("/_bench/reset", self._reset)
            app.router.add_post("/_bench/limits", self._limits)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers ---------------------------------------------------------------------------

    def _admit(self, windows: Windows | None, key: str) -> web.Response | None:
        self.requests += 1
        now = time.monotonic()
        self.arrival_times.append(now)
        if self.enforce:
            tenant_wait = self._tenant.wait("tenant", now)
            key_wait = windows.wait(key, now) if windows is not None else 0.0
            wait = max(tenant_wait, key_wait)
            if wait > 0:
                self.throttled += 1
                self.throttled_by["tenant" if tenant_wait > 0 else "conversation"] += 1
                retry = f"{math.ceil(wait * 1000) / 1000:.3f}"
                return web.json_response({"error": {"code": "Throttled", "message": "slow down"}},
                                         status=429, headers={"Retry-After": retry})
            self._tenant.add("tenant", now)
            if windows is not None:
                windows.add(key, now)
        self.accepted_times.append(now)
        return None

    def _tell(self, method: str, cid: str, activity: dict[str, Any]) -> None:
        if activity.get("text"):
            for match in TOKEN.finditer(str(activity["text"])):
                self.tokens[int(match.group(1))] += 1
        now = time.monotonic()
        for listener in self.listeners:
            listener(method, cid, activity, now)

    async def _post(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        refused = self._admit(self._send, cid)
        if refused is not None:
            return refused
        activity = await request.json()
        activity["id"] = f"1:{next(self._ids)}"
        self.posts += 1
        self._tell("POST", cid, activity)
        return web.json_response({"id": activity["id"]}, status=201)

    async def _put(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        refused = self._admit(self._send, cid)
        if refused is not None:
            return refused
        activity = await request.json()
        activity["id"] = request.match_info["aid"]
        self.puts += 1
        self._tell("PUT", cid, activity)
        return web.json_response({"id": activity["id"]})

    async def _member(self, request: web.Request) -> web.Response:
        refused = self._admit(self._members, request.match_info["cid"])
        if refused is not None:
            return refused
        member = self.directory.get(request.match_info["uid"])
        if member is None:
            return web.json_response({"error": {"code": "MemberNotFoundInConversation",
                                                "message": "unknown member"}}, status=404)
        return web.json_response(member)

    async def _create(self, request: web.Request) -> web.Response:
        refused = self._admit(None, "bot")
        if refused is not None:
            return refused
        body = await request.json()
        user = str(((body.get("members") or [{}])[0]).get("id", ""))
        return web.json_response({"id": f"a:created-{user}"}, status=201)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
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


async def _serve(port: int) -> None:
    connector = await Connector().start(port, control=True)
    print(f"connector on {connector.service_url}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(_serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
