"""GET /api/v1/sessions and /api/v1/events: filtered, paged, JSON by default, CSV on request."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from aiohttp import web

from bot.domain.session import SessionResult
from bot.http import Handler, HttpError, answering, api_key
from bot.services import reporting
from bot.services.engine import Engine
from bot.services.ports import EventFilter, SessionFilter

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_SEQ = 2**62  # an event cursor past this was not handed out
# A spreadsheet takes a cell starting with these as a formula (or moves it to another cell).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _allowed_services(request: web.Request, engine: Engine) -> frozenset[str]:
    return frozenset(api_key(request, engine.catalog, "reporting").services)


def _moment(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise HttpError(400, f"`{name}` must be an ISO 8601 date-time.") from None
    if moment.tzinfo is None:
        raise HttpError(400, f"`{name}` needs a time zone, e.g. 2026-11-01T00:00:00Z.")
    return moment


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= MAX_LIMIT:
        raise HttpError(400, f"`limit` must be a whole number from 1 to {MAX_LIMIT}.")
    return int(raw)


def _service(request: web.Request, allowed: frozenset[str]) -> str | None:
    service = request.query.get("service") or None
    if service is not None and service not in allowed:
        raise HttpError(403, "The API key does not name that service.")
    return service


def _cell(value: object) -> object:
    """A cell a spreadsheet shows as text: one that would start a formula gets a `'` first."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _respond(request: web.Request, page: reporting.Page, columns: tuple[str, ...]) -> web.Response:
    headers = {"X-Next-Cursor": page.next} if page.next else {}
    if "text/csv" in request.headers.get("Accept", ""):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore",
                                lineterminator="\r\n")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in page.rows)
        return web.Response(text=buffer.getvalue(), content_type="text/csv", headers=headers)
    return web.json_response({"items": page.rows, "next": page.next}, headers=headers)


def _guarded(handler: Handler) -> Handler:
    return answering(handler, busy="The store is busy; please retry.")


def routes(engine_key: web.AppKey[Engine]) -> list[web.RouteDef]:
    """The export routes; the engine is read from the app under `engine_key` per request."""

    @_guarded
    async def sessions(request: web.Request) -> web.Response:
        engine = request.app[engine_key]
        allowed = _allowed_services(request, engine)
        result = request.query.get("result") or None
        if result is not None and result not in {r.value for r in SessionResult}:
            raise HttpError(400, "`result` must be one of "
                                 + ", ".join(r.value for r in SessionResult) + ".")
        where = SessionFilter(service_id=_service(request, allowed),
                              agent_id=request.query.get("agent") or None, result=result,
                              tag=request.query.get("tag") or None,
                              since=_moment(request, "from"), until=_moment(request, "to"))
        cursor = request.query.get("cursor") or None
        if cursor is not None:
            try:
                reporting.parse_session_cursor(cursor)
            except ValueError:
                raise HttpError(400, "`cursor` is not one this API handed out.") from None
        page = await engine.read(reporting.export_sessions, where, cursor, _limit(request),
                                 allowed)
        return _respond(request, page, reporting.SESSION_COLUMNS)

    @_guarded
    async def events(request: web.Request) -> web.Response:
        engine = request.app[engine_key]
        allowed = _allowed_services(request, engine)
        cursor = request.query.get("cursor", "0")
        if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 19
                and int(cursor) <= MAX_SEQ):
            raise HttpError(400, "`cursor` is not one this API handed out.")
        where = EventFilter(service_id=_service(request, allowed),
                                      agent_id=request.query.get("agent") or None,
                                      name=request.query.get("name") or None,
                                      since=_moment(request, "from"),
                                      until=_moment(request, "to"))
        page = await engine.read(reporting.export_events, where, int(cursor), _limit(request),
                                 allowed)
        return _respond(request, page, reporting.EVENT_COLUMNS)

    return [web.get("/api/v1/sessions", sessions), web.get("/api/v1/events", events)]
