"""The supervisor board's HTTP API: the board as JSON, its live stream (server-sent events), and
the supervisor's actions. Who asks comes from an `Identify` function the app plugs in.

    GET  /api/board/v1                                   the boards of the caller's services
    GET  /api/board/v1/stream                            the same, as text/event-stream
    POST /api/board/v1/tasks/{task}/withdraw
    POST /api/board/v1/tasks/{task}/offer                {"agent_id": "..."}
    POST /api/board/v1/services/{service}/agents/{agent}/reset-rona
    POST /api/board/v1/services/{service}/agents/{agent}/off-duty

Refusals are `{"error": "..."}` with 400 (bad input), 401 (no identity), 403 (not a
supervisor of the service), 404 (no such task, agent or service), 409 (the task or agent has
moved on), 503 (store busy).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.board.live import BoardHub
from bot.domain.agent import Agent, derive_state
from bot.domain.task import Task
from bot.http import Handler, HttpError, answering, read_json_object
from bot.services import board, supervision
from bot.services.board import DayFigures, ServiceBoard, Supervisor
from bot.services.context import Ctx
from bot.services.engine import Engine
from bot.services.ports import ConflictError, StoreUnavailable

AgentAction = Callable[[Ctx, Supervisor, str, str], Awaitable[Agent]]
"""A supervisor's action on one agent of one service (bot/services/supervision.py)."""

log = logging.getLogger(__name__)

PREFIX = "/api/board/v1"
BUSY = "The store is busy; please retry."
MAX_BODY = 4 * 1024
MAX_ID = 200
DAY_BACK = timedelta(hours=48)  # how far back `day_start` may go

Identify = Callable[[web.Request], Awaitable[Supervisor]]
"""Who asks: a Supervisor, or an HttpError(401) when the request carries no identity. The app
plugs in the tabs' sign-in (`TabsSite.supervisor`: Teams SSO, or local mode's dev sign-in)."""
Guard = Callable[[Handler], Handler]
"""What answers a handler's refusals (default: JSON; the app plugs in the tabs' own, which
also gives a person who opens an address in a browser a small page)."""

def _moment(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _seconds(delta: timedelta | None) -> float | None:
    return round(delta.total_seconds(), 3) if delta is not None else None


def board_json(found: list[ServiceBoard], now: datetime, day_start: datetime,
               figures: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The board as the page reads it (see the module docstring of bot/board/api.py); a
    service read without figures shows `figures[service]` (figures read earlier)."""
    return {"now": now.isoformat(), "day_start": day_start.isoformat(),
            "services": [_service_json(b, (figures or {}).get(b.service_id))
                         for b in found]}


def _service_json(found: ServiceBoard, earlier: dict[str, Any] | None) -> dict[str, Any]:
    p = found.picture
    return {
        "id": found.service_id, "name": found.name,
        "picture": {"queue_length": p.waiting, "oldest_wait_seconds": p.oldest_wait_seconds,
                    "agents_by_state": p.agents, "sessions_live": p.sessions_live,
                    "sessions_in_acw": p.sessions_acw},
        "queue": [{"task_id": q.task_id, "customer": q.customer, "modality": q.modality,
                   "state": q.state, "priority": q.priority, "queued_at": _moment(q.queued_at),
                   "waiting_seconds": _seconds(q.waiting), "call_flow": list(q.call_flow),
                   "ringing": list(q.ringing)} for q in found.queue],
        "agents": [{"id": a.agent_id, "name": a.name, "state": a.state.value,
                    "since": _moment(a.since), "in_state_seconds": _seconds(a.in_state),
                    "paused": a.paused, "rona_until": _moment(a.rona_until),
                    "sessions": a.sessions} for a in found.agents],
        "sessions": [{"id": s.session_id, "task_id": s.task_id, "agent_id": s.agent_id,
                      "agent": s.agent, "customer": s.customer, "modality": s.modality,
                      "phase": s.phase, "since": _moment(s.since)} for s in found.sessions],
        "figures": figures_json(found.figures) if found.figures is not None else earlier,
    }


def figures_json(f: DayFigures) -> dict[str, Any]:
    return {"threshold_seconds": _seconds(f.threshold), "service_level": f.service_level,
            "answered_within": f.answered_within, "results": f.results,
            "hours": [{"start": h.start.isoformat(), **h.results} for h in f.hours],
            "waits": [{"up_to_seconds": w.up_to, "answered": w.answered,
                       "unanswered": w.unanswered} for w in f.waits],
            "partial": f.partial}


_CLOCK_KEYS = frozenset({"now", "waiting_seconds", "in_state_seconds", "oldest_wait_seconds"})


def _without_clock(value: Any) -> Any:
    """The board minus what only the passing of time changes: what a refresh compares."""
    if isinstance(value, dict):
        return {k: _without_clock(v) for k, v in value.items() if k not in _CLOCK_KEYS}
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


class FiguresCache:
    """The day's figures the open streams of this instance showed last, by service and day
    start: the streams of several supervisors of one service read them once per `every`."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._found: dict[tuple[str, datetime], tuple[float, dict[str, Any]]] = {}

    def fresh(self, service_id: str, day_start: datetime, now: float) -> dict[str, Any] | None:
        found = self._found.get((service_id, day_start))
        return found[1] if found is not None and now - found[0] < self.every else None

    def keep(self, service_id: str, day_start: datetime, now: float,
             figures: dict[str, Any]) -> None:
        self._found = {key: (at, kept) for key, (at, kept) in self._found.items()
                       if now - at < self.every}
        self._found[(service_id, day_start)] = (now, figures)


class _LiveBoard:
    """One open stream's reads: what is live at every read; the day's figures (which read the
    day's sessions) when the instance's cache has none fresh enough."""

    def __init__(self, engine: Engine, who: Supervisor, day_start: datetime,
                 service: str | None, cache: FiguresCache) -> None:
        self.engine, self.who, self.day_start, self.service = engine, who, day_start, service
        self.cache = cache
        self.read_at = float("-inf")
        self.shown: Any = None
        self.sent = 0

    async def read(self) -> dict[str, Any]:
        now = asyncio.get_running_loop().time()
        self.read_at = now
        services = ([self.service] if self.service
                    else board.supervised(self.engine.catalog, self.who))
        cached = {sid: self.cache.fresh(sid, self.day_start, now) for sid in services}
        stale = {sid for sid, figures in cached.items() if figures is None}
        found = await self.engine.read(board.boards, self.who, self.day_start, self.service,
                                       figures_for=stale)
        figures = {sid: f for sid, f in cached.items() if f is not None}
        for b in found:
            if b.figures is not None:
                figures[b.service_id] = figures_json(b.figures)
                self.cache.keep(b.service_id, self.day_start, now, figures[b.service_id])
        return board_json(found, self.engine.clock.now(), self.day_start, figures)

    async def refresh(self) -> dict[str, Any] | None:
        """`read`; None when the store is busy now (the next wake-up tries again)."""
        try:
            return await self.read()
        except (StoreUnavailable, ConflictError) as exc:
            log.warning("board not refreshed", extra={"error": type(exc).__name__})
            return None

    async def send(self, response: web.StreamResponse, payload: dict[str, Any]) -> None:
        self.sent += 1
        data = json.dumps(payload, separators=(",", ":"))
        await response.write(f"id: {self.sent}\nevent: board\ndata: {data}\n\n".encode())
        self.shown = _without_clock(payload)


def _task_json(task: Task) -> dict[str, Any]:
    return {"task": {"id": task.id, "state": task.state.value, "service": task.service_id}}


def _agent_json(agent: Agent, engine: Engine) -> dict[str, Any]:
    state = derive_state(agent, engine.catalog, engine.clock.now())
    return {"agent": {"id": agent.id, "state": state.value, "profile": agent.profile}}


def _path_id(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if not value or len(value) > MAX_ID:
        raise HttpError(400, f"`{name}` is not a valid id.")
    return value


class BoardApi:
    """The board's routes and live streams on this instance."""

    KEEPALIVE = 15.0  # seconds between comments on an idle stream (each also re-reads)
    COALESCE = 0.05  # seconds a woken stream waits for the rest of a burst of commits
    MIN_GAP = 0.5  # seconds at least between two reads of one stream
    FIGURES_EVERY = 10.0  # seconds the streams show the same day's figures before reading again

    def __init__(self, identify: Identify, guard: Guard | None = None) -> None:
        self.identify = identify
        self.guard: Guard = guard or (lambda h: answering(h, busy=BUSY))
        self.hub = BoardHub()
        self.figures = FiguresCache(self.FIGURES_EVERY)
        self._engine_key: web.AppKey[Engine] | None = None

    def notify(self, topics: set[str] | None) -> None:
        self.hub.notify(topics)

    def mount(self, app: web.Application, engine_key: web.AppKey[Engine]) -> None:
        """Add the routes, and end the open streams as the app begins to stop (before the
        server waits for its requests to finish)."""
        self._engine_key = engine_key

        async def end_streams(_app: web.Application) -> None:
            self.hub.close()

        app.on_shutdown.append(end_streams)
        guarded = self.guard
        app.router.add_routes([
            web.get(PREFIX, guarded(self.get_board)),
            web.get(f"{PREFIX}/stream", guarded(self.stream)),
            web.post(f"{PREFIX}/tasks/{{task}}/withdraw", guarded(self.withdraw)),
            web.post(f"{PREFIX}/tasks/{{task}}/offer", guarded(self.offer)),
            web.post(f"{PREFIX}/services/{{service}}/agents/{{agent}}/reset-rona",
                     guarded(self.agent_action(supervision.reset_rona))),
            web.post(f"{PREFIX}/services/{{service}}/agents/{{agent}}/off-duty",
                     guarded(self.agent_action(supervision.set_off_duty))),
        ])

    def _engine(self, request: web.Request) -> Engine:
        assert self._engine_key is not None, "mount() first"
        return request.app[self._engine_key]

    # -- reads --------------------------------------------------------------------------------

    def _query(self, request: web.Request, engine: Engine) -> tuple[datetime, str | None]:
        """`day_start` (an ISO date-time with a zone, at most 48 h back; default: midnight
        UTC) and `service` (one of the caller's services; default: all of them)."""
        now = engine.clock.now()
        raw = request.query.get("day_start")
        if raw:
            try:
                day_start = datetime.fromisoformat(raw)
            except ValueError:
                raise HttpError(400, "`day_start` must be an ISO 8601 date-time.") from None
            if day_start.tzinfo is None:
                raise HttpError(400, "`day_start` needs a time zone, e.g. "
                                     "2026-11-02T00:00:00+01:00.")
            if not now - DAY_BACK <= day_start <= now:
                raise HttpError(400, "`day_start` must lie within the last 48 hours.")
        else:
            day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        service = request.query.get("service") or None
        if service is not None and len(service) > MAX_ID:
            raise HttpError(400, "`service` is not a valid id.")
        return day_start, service

    async def get_board(self, request: web.Request) -> web.Response:
        """The board now; the day's figures from the instance's cache, as the streams get them
        (a poll must not read the day's sessions each time)."""
        who = await self.identify(request)
        engine = self._engine(request)
        day_start, service = self._query(request, engine)
        shown = await _LiveBoard(engine, who, day_start, service, self.figures).read()
        return web.json_response(shown, headers={"Cache-Control": "no-store"})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """The board now, then again whenever a service it shows changed on any instance
        (`event: board`), and a comment every KEEPALIVE seconds; refusals come before the
        stream starts, as JSON."""
        who = await self.identify(request)
        engine = self._engine(request)
        day_start, service = self._query(request, engine)
        live = _LiveBoard(engine, who, day_start, service, self.figures)
        # Listening before the first read: a change committed meanwhile rings at once.
        bell = self.hub.subscribe([service] if service else board.supervised(engine.catalog,
                                                                            who))
        loop = asyncio.get_running_loop()
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-store",
            "X-Accel-Buffering": "no"})
        try:
            current = await live.read()  # 401/403/404 here, before the stream starts
            await response.prepare(request)
            await response.write(b"retry: 2000\n\n")
            await live.send(response, current)
            while not bell.closed:
                rung = await bell.wait(self.KEEPALIVE)
                if bell.closed:
                    break
                # A burst of commits is one update; one board reads at most every MIN_GAP.
                await asyncio.sleep(max(self.COALESCE if rung else 0,
                                        live.read_at + self.MIN_GAP - loop.time()))
                fresh = await live.refresh()
                if fresh is not None and _without_clock(fresh) != live.shown:
                    await live.send(response, fresh)
                elif not rung:
                    await response.write(b": keepalive\n\n")
        except ConnectionResetError:
            pass  # the page went away: nothing to tell anyone
        finally:
            self.hub.unsubscribe(bell)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    # -- actions ------------------------------------------------------------------------------

    async def withdraw(self, request: web.Request) -> web.Response:
        who = await self.identify(request)
        engine = self._engine(request)
        task = await engine.run(supervision.withdraw, who, _path_id(request, "task"))
        return web.json_response(_task_json(task))

    async def offer(self, request: web.Request) -> web.Response:
        who = await self.identify(request)
        engine = self._engine(request)
        task_id = _path_id(request, "task")
        body = await read_json_object(request, MAX_BODY)
        agent_id = body.get("agent_id")
        if not isinstance(agent_id, str) or not agent_id.strip() or len(agent_id) > MAX_ID:
            raise HttpError(400, "Name the agent to offer the task to as `agent_id`.",
                            field="agent_id")
        task = await engine.run(supervision.offer_to, who, task_id, agent_id.strip())
        return web.json_response(_task_json(task))

    def agent_action(self, use_case: AgentAction) -> Handler:
        """POST .../services/{service}/agents/{agent}/<action>: the agent as the action left it."""
        async def handle(request: web.Request) -> web.Response:
            who = await self.identify(request)
            engine = self._engine(request)
            agent = await engine.run(use_case, who, _path_id(request, "service"),
                                     _path_id(request, "agent"))
            return web.json_response(_agent_json(agent, engine))
        return handle

