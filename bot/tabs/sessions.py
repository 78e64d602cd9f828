"""My Sessions' JSON: the agent's sessions (search, filters, sorting, paging), one session's
details as the detail card shows them, and the wrap-up save the card's Save runs.

Search and the result, type and period filters are the card's (`desk.session_search` on the
same store query); the service filter, sorting and paging work on the newest `WINDOW`
matching sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.cards import views as v
from bot.cards.common import MODALITY_LABELS, NOT_AVAILABLE
from bot.cards.dates import readable
from bot.cards.durations import in_words
from bot.cards.session_detail import detail_rows
from bot.cards.sessions import MODALITY_FILTERS, PERIOD_FILTERS, RESULT_FILTERS, state_label
from bot.cards.text import as_is, safe_url
from bot.dialogs import views
from bot.dialogs.desk import session_search
from bot.dialogs.session_cards import card_suggests
from bot.domain.session import Session
from bot.http import HttpError, read_json_object
from bot.services import queries, wrapup
from bot.services.engine import Engine
from bot.tabs.auth import TabUser

if TYPE_CHECKING:
    from bot.tabs.site import TabsSite

WINDOW = 500  # newest matching sessions the service filter, sorting and paging work on
PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_QUERY = 200
MAX_BODY = 16 * 1024
MAX_TAGS = 50


def _state(session: Session) -> str:
    entry = views.session_entry(session)
    return state_label(entry.phase, entry.result)


def _talked(session: Session) -> float:
    seconds = views.timings(session).connected_seconds
    return -1.0 if seconds is None else seconds  # never connected: before the shortest talk


# The table's sortable columns: the key each sorts by.
SORTS: dict[str, Callable[[Session], Any]] = {
    "time": lambda s: s.offered_at,
    "customer": lambda s: (s.customer_label or "").lower(),
    "service": lambda s: (s.service_name or s.service_id).lower(),
    "modality": lambda s: s.modality.value,
    "state": _state,
    "waited": lambda s: s.queue_time().total_seconds(),
    "talked": _talked,
}


def _choice(request: web.Request, name: str, allowed: set[str]) -> str:
    value = request.query.get(name, "").strip()
    if value and value not in allowed:
        raise HttpError(422, f"`{name}` must be one of: {', '.join(sorted(allowed))}.",
                        field=name)
    return value


def _number(request: web.Request, name: str, default: int, top: int) -> int:
    raw = request.query.get(name, str(default))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or int(raw) > top:
        raise HttpError(422, f"`{name}` must be a whole number from 0 to {top}.", field=name)
    return int(raw)


def filters(request: web.Request, engine: Engine) -> tuple[v.SessionFilters, str]:
    """The card's filters (`SessionFilters`) from the query string, and the service."""
    query = request.query.get("q", "").strip()
    if len(query) > MAX_QUERY:
        raise HttpError(422, f"The search is longer than {MAX_QUERY} characters.", field="q")
    return v.SessionFilters(
        query=query,
        result=_choice(request, "result", {c.value for c in RESULT_FILTERS}),
        modality=_choice(request, "modality", {c.value for c in MODALITY_FILTERS}),
        period=_choice(request, "period", {c.value for c in PERIOD_FILTERS}),
    ), _choice(request, "service", set(engine.catalog.services))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _duration(seconds: float | None) -> str:
    return in_words(seconds) if seconds is not None else ""


def entry_json(session: Session) -> dict[str, Any]:
    """One row of the table: what the card's entry shows, and codes and tags."""
    entry = views.session_entry(session)
    timings = entry.timings
    return {
        "id": entry.session_id,
        "started_at": _iso(entry.started_at),
        "started": readable(entry.started_at),
        "customer": entry.customer or NOT_AVAILABLE,
        "customer_known": entry.customer is not None,
        "service": entry.service,
        "service_id": session.service_id,
        "modality": entry.modality.value,
        "modality_label": MODALITY_LABELS[entry.modality],
        "state": entry.phase.value if entry.phase is not v.Phase.ENDED else entry.result.value,
        "state_label": state_label(entry.phase, entry.result),
        "live": entry.phase is not v.Phase.ENDED,
        "open": entry.is_open,
        "waited_seconds": timings.queue_seconds,
        "waited": _duration(timings.queue_seconds),
        "talked_seconds": timings.connected_seconds,
        "talked": _duration(timings.connected_seconds),
        "primary_code": session.primary_code,
        "secondary_code": session.secondary_code,
        "tags": list(session.tags),
    }


async def list_sessions(request: web.Request, user: TabUser, engine: Engine) -> web.Response:
    chosen, service = filters(request, engine)
    sort = _choice(request, "sort", set(SORTS)) or "time"
    descending = _choice(request, "dir", {"asc", "desc"}) != "asc"
    size = _number(request, "size", PAGE_SIZE, MAX_PAGE_SIZE) or PAGE_SIZE
    page = _number(request, "page", 0, 100_000)
    found = await engine.read(queries.sessions_page, user.agent_id, WINDOW + 1, 0,
                              session_search(chosen, engine.clock.now()))
    truncated = len(found) > WINDOW
    matching = [s for s in found[:WINDOW] if not service or s.service_id == service]
    matching.sort(key=lambda s: s.id, reverse=descending)  # ties in a stable order
    matching.sort(key=SORTS[sort], reverse=descending)
    rows = matching[page * size:(page + 1) * size]
    return web.json_response({
        "entries": [entry_json(s) for s in rows],
        "page": page, "size": size, "total": len(matching),
        "has_previous": page > 0, "has_next": (page + 1) * size < len(matching),
        "truncated": truncated,
    })


async def choices(request: web.Request, user: TabUser, engine: Engine) -> web.Response:
    """The filters' choices: the card's, and the agent's services."""
    catalog = engine.catalog
    return web.json_response({
        "services": [{"value": s, "title": catalog.services[s].name}
                     for s in user.agent.services if s in catalog.services],
        "results": [{"value": c.value, "title": c.title} for c in RESULT_FILTERS],
        "modalities": [{"value": c.value, "title": c.title} for c in MODALITY_FILTERS],
        "periods": [{"value": c.value, "title": c.title} for c in PERIOD_FILTERS],
        "sorts": list(SORTS),
    })


async def _own(engine: Engine, user: TabUser, session_id: str) -> queries.SessionBundle:
    bundle = await engine.read(queries.load_bundle, session_id, suggest=card_suggests(wrapup=True))
    if bundle.session is None or bundle.session.agent_id != user.agent_id:
        raise HttpError(404, "There is no session of yours with this id.")
    return bundle


def detail_json(bundle: queries.SessionBundle, engine: Engine) -> dict[str, Any]:
    """What the detail card shows (its facts, the customer's details, the context link) and,
    for an entry still open, the wrap-up form's choices."""
    session = bundle.session
    assert session is not None
    catalog = engine.catalog
    view = views.session_detail(session, bundle.task, catalog)
    form = None
    if view.entry.is_open:
        wrap = views.wrapup(session, catalog, suggestions=bundle.suggestions)
        form = {
            "primary_codes": [c.value for c in wrap.primary_codes],
            "secondary_codes": [c.value for c in wrap.secondary_codes],
            "codes_required": wrap.codes_required,
            "primary_code": wrap.primary_code, "secondary_code": wrap.secondary_code,
            "tags": list(wrap.tags), "suggestions": list(wrap.tag_suggestions),
            "may_save": session.phase.value != "ringing",
        }
    return {
        "entry": entry_json(session),
        "rows": [list(row) for row in detail_rows(view, as_is)],
        "details": [list(row) for row in view.customer_fields],
        "context_url": safe_url(view.context_url),
        "wrapup": form,
    }


async def one_session(request: web.Request, user: TabUser, engine: Engine) -> web.Response:
    bundle = await _own(engine, user, request.match_info["session_id"])
    return web.json_response(detail_json(bundle, engine))


def _tags(body: dict[str, Any]) -> list[str]:
    raw = body.get("tags", [])
    if not isinstance(raw, list) or len(raw) > MAX_TAGS or \
            not all(isinstance(t, str) for t in raw):
        raise HttpError(422, f"`tags` must be a list of at most {MAX_TAGS} texts.", field="tags")
    return [t for t in raw if t.strip()]


def _code(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise HttpError(422, f"`{name}` must be a text.", field=name)
    return value


async def save(request: web.Request, user: TabUser, engine: Engine) -> web.Response:
    """The card's Save: `wrapup.save_wrapup`, so the same rules (once, codes) hold."""
    session_id = request.match_info["session_id"]
    body = await read_json_object(request, MAX_BODY)
    await _own(engine, user, session_id)
    await engine.run(wrapup.save_wrapup, session_id, user.agent_id,
                     primary=_code(body, "primary_code"),
                     secondary=_code(body, "secondary_code"), tags=_tags(body))
    return web.json_response(detail_json(await _own(engine, user, session_id), engine))


def routes(site: TabsSite) -> list[web.RouteDef]:
    return [
        web.get("/tabs/api/sessions/filters", site.api(choices)),
        web.get("/tabs/api/sessions", site.api(list_sessions)),
        web.get("/tabs/api/sessions/{session_id}", site.api(one_session)),
        web.post("/tabs/api/sessions/{session_id}/wrapup", site.api(save)),
    ]
