"""Bot Connector stand-in: records activities, answers updates, 1:1 creates, members; throttles.

The one stand-in of the tests and of bench/ (which runs it in its driver and, as
``python -m bench.connector``, in a process of its own).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.standins.server import StandinServer, error, json_object

# The Teams per-bot limits (operation -> (count, seconds) windows), kept independent of
# bot.teams.ratelimit on purpose so the stand-in checks the client instead of mirroring it.
SEND_LIMITS: tuple[tuple[int, float], ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
CREATE_LIMITS: tuple[tuple[int, float], ...] = SEND_LIMITS
MEMBER_LIMITS: tuple[tuple[int, float], ...] = (
    (14, 1.0),
    (16, 2.0),
    (120, 30.0),
    (3600, 3600.0),
)
TENANT_LIMITS: tuple[tuple[int, float], ...] = ((50, 1.0),)


@dataclass
class _Failure:
    status: int
    path: str | None
    method: str | None
    until: float | None
    remaining: int | None
    retry_after: str | None

    def matches(self, request: web.Request, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method is not None and request.method != self.method.upper():
            return False
        return self.path is None or self.path in request.path


Listener = Callable[[str, str, dict[str, Any], float], None]
"""(method, conversation id, activity, arrival time on the stand-in's clock) for every
accepted post and update."""


class _SlidingLog:
    """Accepted-request times per key, checked against (count, seconds) windows."""

    def __init__(self, limits: tuple[tuple[int, float], ...], time_scale: float) -> None:
        self._limits = tuple((count, seconds * time_scale) for count, seconds in limits)
        self._horizon = max(seconds for _, seconds in self._limits)
        self._log: dict[str, list[float]] = defaultdict(list)

    def wait(self, key: str, now: float) -> float:
        """0.0 if a request for ``key`` is within limits now, else seconds until it would be."""
        log = self._log.get(key)
        if not log:
            return 0.0
        wait = 0.0
        for count, seconds in self._limits:
            inside = len(log) - bisect_right(log, now - seconds)
            if inside >= count:
                wait = max(wait, log[len(log) - count] + seconds - now)
        return wait

    def add(self, key: str, now: float) -> None:
        log = self._log[key]
        log.append(now)
        if len(log) > 4096:  # trim what no window can see any more
            del log[: bisect_right(log, now - self._horizon)]


class ConnectorStandin(StandinServer):
    """A Bot Connector on 127.0.0.1 (ephemeral port); ``service_url`` is its serviceUrl.

    Records every posted activity per conversation in arrival order (``activities``), assigns
    activity ids, keeps the latest version of each activity (``latest``; PUT updates), answers
    1:1 ``POST /v3/conversations`` (same user, same conversation id), serves member lookups
    from ``directory``, and tells ``listeners`` of every accepted post and update. Failures
    can be injected (``fail_for``, ``fail_next``, ``fail_path``, ``block_conversation``). With
    ``enforce_limits`` it applies the Teams limits (windows multiplied by ``time_scale``) and
    answers 429 with Retry-After (whole seconds as Teams sends it, fractional ones when scaled
    below 1 or with ``fractional_retry_after``); only accepted requests count towards the
    windows. ``record=False`` keeps counters but no activities (a long load run).
    """

    def __init__(
        self,
        *,
        enforce_limits: bool = False,
        time_scale: float = 1.0,
        directory: Mapping[str, Mapping[str, Any]] | None = None,
        send_retry_after: bool = True,
        fractional_retry_after: bool = False,
        record: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.send_retry_after = send_retry_after
        self.fractional_retry_after = fractional_retry_after
        self.record = record
        self.directory: dict[str, dict[str, Any]] = {
            uid: dict(entry) for uid, entry in (directory or {}).items()
        }
        self.listeners: list[Listener] = []
        self._clock = clock
        self.set_limits(enforce_limits, time_scale)
        self._failures: list[_Failure] = []
        self._blocked: set[str] = set()
        self._next_id = 0
        # What happened, for assertions.
        self.activities: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.latest: dict[str, dict[str, Any]] = {}
        self.updates: list[tuple[str, str, dict[str, Any]]] = []
        self.created_conversations: list[dict[str, Any]] = []
        self.personal_conversations: dict[str, str] = {}
        self.member_lookups: list[tuple[str, str]] = []
        self.authorizations: list[str | None] = []
        self.reset_counts()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v3/conversations", self._create_conversation)
        app.router.add_post("/v3/conversations/{cid}/activities", self._post_activity)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._post_activity)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._update_activity)
        app.router.add_get("/v3/conversations/{cid}/members/{uid}", self._get_member)

    @property
    def service_url(self) -> str:
        """The serviceUrl to give the client (no trailing slash)."""
        return self.origin

    # knobs -----------------------------------------------------------------------------

    def set_limits(self, enforce: bool, time_scale: float = 1.0) -> None:
        """Enforce the Teams limits (or not) from now on, with fresh windows."""
        self.enforce_limits = enforce
        self.time_scale = time_scale
        self._send_log = _SlidingLog(SEND_LIMITS, time_scale)
        self._create_log = _SlidingLog(CREATE_LIMITS, time_scale)
        self._member_log = _SlidingLog(MEMBER_LIMITS, time_scale)
        self._tenant_log = _SlidingLog(TENANT_LIMITS, time_scale)

    def reset_counts(self) -> None:
        """Zero the counters (not the records): a new measurement starts."""
        self.requests = 0
        self.throttled = 0
        self.throttled_by = {"tenant": 0, "conversation": 0}  # which window refused
        self.failed = 0
        self.posts = 0
        self.puts = 0
        self.arrival_times: list[float] = []  # every request, also those refused
        self.accepted_times: list[float] = []  # every request let through

    def add_member(
        self,
        user_id: str,
        *,
        name: str,
        user_principal_name: str,
        email: str | None = None,
        aad_object_id: str | None = None,
    ) -> None:
        self.directory[user_id] = {
            "id": user_id,
            "name": name,
            "userPrincipalName": user_principal_name,
            "email": email or user_principal_name,
            "aadObjectId": aad_object_id or user_id,
        }

    def fail_for(
        self,
        seconds: float,
        status: int = 503,
        *,
        path: str | None = None,
        method: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer ``status`` to matching requests for the next ``seconds`` (real time)."""
        self._failures.append(
            _Failure(status, path, method, self._clock() + seconds, None, _fmt(retry_after))
        )

    def fail_next(
        self,
        count: int,
        status: int = 500,
        *,
        path: str | None = None,
        method: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer ``status`` to the next ``count`` matching requests."""
        self._failures.append(_Failure(status, path, method, None, count, _fmt(retry_after)))

    def fail_path(self, path: str, status: int = 500, *, method: str | None = None) -> None:
        """Answer ``status`` to every request whose path contains ``path`` until cleared."""
        self._failures.append(_Failure(status, path, method, None, None, None))

    def clear_failures(self) -> None:
        self._failures.clear()

    def block_conversation(self, conversation_id: str) -> None:
        """Posts and updates in this conversation answer 403 MessageWritesBlocked."""
        self._blocked.add(conversation_id)

    def texts(self, conversation_id: str) -> list[str | None]:
        """The ``text`` of every activity posted to a conversation, in order."""
        return [activity.get("text") for activity in self.activities.get(conversation_id, [])]

    # plumbing --------------------------------------------------------------------------

    def _admit(
        self, request: web.Request, log: _SlidingLog | None, key: str
    ) -> web.Response | None:
        """Count the request, apply injected failures and limits; None means go ahead."""
        self.requests += 1
        now = self._clock()
        self.arrival_times.append(now)
        if self.record:
            self.authorizations.append(request.headers.get("Authorization"))
        for failure in self._failures:
            if failure.matches(request, now):
                if failure.remaining is not None:
                    failure.remaining -= 1
                self.failed += 1
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else None
                return error(failure.status, "ServiceError", "injected failure", headers)
        if self.enforce_limits:
            tenant_wait = self._tenant_log.wait("tenant", now)
            key_wait = 0.0 if log is None else log.wait(key, now)
            wait = max(tenant_wait, key_wait)
            if wait > 0:
                self.throttled += 1
                self.throttled_by["tenant" if tenant_wait > 0 else "conversation"] += 1
                headers = (
                    {"Retry-After": self._retry_after(wait)} if self.send_retry_after else None
                )
                return error(429, "Throttled", "too many requests", headers)
            self._tenant_log.add("tenant", now)
            if log is not None:
                log.add(key, now)
        self.accepted_times.append(now)
        return None

    def _retry_after(self, wait: float) -> str:
        if self.time_scale >= 1 and not self.fractional_retry_after:
            return str(max(1, math.ceil(wait)))
        return f"{math.ceil(wait * 1000) / 1000:.3f}"

    def _new_activity_id(self) -> str:
        self._next_id += 1
        return f"1:{self._next_id}"

    def _tell(self, method: str, cid: str, activity: dict[str, Any]) -> None:
        if self.listeners:
            at = self._clock()
            for listener in self.listeners:
                listener(method, cid, activity, at)

    def _store(self, cid: str, activity: dict[str, Any]) -> str:
        """Record a new activity in a conversation; its id."""
        activity_id = self._new_activity_id()
        stored = {**activity, "id": activity_id}
        if self.record:
            self.activities[cid].append(stored)
            self.latest[activity_id] = stored
        self.posts += 1
        self._tell("POST", cid, stored)
        return activity_id

    async def _write(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The activity a post or an update writes, or the answer refusing it."""
        cid = request.match_info["cid"]
        refused = self._admit(request, self._send_log, cid)
        if refused is not None:
            return refused
        if cid in self._blocked:
            return error(
                403, "MessageWritesBlocked", "Bot is not installed in user's personal scope"
            )
        activity = await json_object(request)
        if activity is None:
            return error(400, "BadArgument", "body is not a JSON object")
        return activity

    async def _post_activity(self, request: web.Request) -> web.Response:
        activity = await self._write(request)
        if isinstance(activity, web.Response):
            return activity
        return web.json_response({"id": self._store(request.match_info["cid"], activity)},
                                 status=201)

    async def _update_activity(self, request: web.Request) -> web.Response:
        cid, aid = request.match_info["cid"], request.match_info["aid"]
        activity = await self._write(request)
        if isinstance(activity, web.Response):
            return activity
        if self.record and aid not in self.latest:
            return error(404, "ActivityNotFoundInConversation", "unknown activity")
        stored = {**activity, "id": aid}
        if self.record:
            self.latest[aid] = stored
            self.updates.append((cid, aid, stored))
        self.puts += 1
        self._tell("PUT", cid, stored)
        return web.json_response({"id": aid})

    async def _create_conversation(self, request: web.Request) -> web.Response:
        refused = self._admit(request, self._create_log, "bot")
        if refused is not None:
            return refused
        body = await json_object(request)
        if body is None:
            return error(400, "BadArgument", "body is not a JSON object")
        if body.get("isGroup"):
            return error(400, "BadArgument", "bots cannot create group conversations")
        members = body.get("members")
        if not isinstance(members, list) or len(members) != 1 or "id" not in members[0]:
            return error(400, "BadArgument", "exactly one member is required")
        if self.record:
            self.created_conversations.append(body)
        user_id = str(members[0]["id"])
        cid = self.personal_conversations.setdefault(
            user_id, f"a:personal-{len(self.personal_conversations) + 1}"
        )
        answer: dict[str, Any] = {"id": cid}
        activity = body.get("activity")
        if isinstance(activity, dict):
            answer["activityId"] = self._store(cid, activity)
        return web.json_response(answer, status=201)

    async def _get_member(self, request: web.Request) -> web.Response:
        cid, uid = request.match_info["cid"], request.match_info["uid"]
        refused = self._admit(request, self._member_log, cid)
        if refused is not None:
            return refused
        if self.record:
            self.member_lookups.append((cid, uid))
        member = self.directory.get(uid)
        if member is None:
            return error(404, "MemberNotFoundInConversation", "unknown member")
        return web.json_response(member)


def _fmt(seconds: float | None) -> str | None:
    return None if seconds is None else f"{seconds:g}"
