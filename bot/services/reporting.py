"""Reporting export: sessions and events as flat rows for Power BI and friends."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.domain.events import Event
from bot.domain.session import RESULT_LABELS, Session
from bot.services.context import Ctx
from bot.services.ports import EventFilter, SessionFilter

NOT_AVAILABLE = "Not available"

SESSION_COLUMNS = (
    "session_id", "task_id", "service_id", "service", "agent_id", "modality", "result",
    "result_label", "customer", "offered_at", "answered_at", "connected_at", "terminated_at",
    "acw_ended_at", "queue_seconds", "ring_seconds", "connected_seconds", "acw_seconds",
    "primary_code", "secondary_code", "tags", "saved_at", "transferred_to",
)
EVENT_COLUMNS = ("seq", "at", "name", "task_id", "session_id", "agent_id", "service_id", "data")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _seconds(delta: Any) -> float | None:
    return round(delta.total_seconds(), 3) if delta is not None else None


def session_row(session: Session) -> dict[str, Any]:
    return {
        "session_id": session.id, "task_id": session.task_id,
        "service_id": session.service_id, "service": session.service_name,
        "agent_id": session.agent_id, "modality": session.modality.value,
        "result": session.result.value if session.result else None,
        "result_label": RESULT_LABELS[session.result] if session.result else "Ringing",
        "customer": session.customer_label if session.customer is not None else NOT_AVAILABLE,
        "offered_at": _iso(session.offered_at), "answered_at": _iso(session.answered_at),
        "connected_at": _iso(session.connected_at),
        "terminated_at": _iso(session.terminated_at),
        "acw_ended_at": _iso(session.acw_ended_at),
        "queue_seconds": _seconds(session.queue_time()),
        "ring_seconds": _seconds(session.ring_time()),
        "connected_seconds": _seconds(session.connected_time()),
        "acw_seconds": _seconds(session.acw_time()),
        "primary_code": session.primary_code, "secondary_code": session.secondary_code,
        "tags": ";".join(session.tags), "saved_at": _iso(session.saved_at),
        "transferred_to": session.transferred_to,
    }


def event_row(event: Event) -> dict[str, Any]:
    return {"seq": event.seq, "at": _iso(event.at), "name": event.name,
            "task_id": event.task_id, "session_id": event.session_id,
            "agent_id": event.agent_id, "service_id": event.service_id,
            "data": json.dumps(event.data, sort_keys=True)}


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next: str | None  # an opaque cursor for the next page, None at the end


def _keyset_cursor(offered_at: datetime, session_id: str) -> str:
    """Opaque and URL-safe: the (offered_at, id) keyset of the last row looked at."""
    raw = f"{offered_at.isoformat()}|{session_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_session_cursor(cursor: str) -> tuple[datetime, str]:
    """Raise ValueError for a cursor this export did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("not a session cursor") from None
    moment, _, session_id = raw.partition("|")
    if not session_id:
        raise ValueError("not a session cursor")
    return datetime.fromisoformat(moment), session_id


# Rows a page may look at: a filter that matches little still answers in bounded time, with
# a cursor to go on (a page can then hold fewer rows than asked for, even none, and a `next`).
SESSION_SCAN = 2_000
EVENT_SCAN = 10_000


async def export_sessions(ctx: Ctx, where: SessionFilter, cursor: str | None, limit: int,
                          services: Collection[str] | None = None) -> Page:
    """A page of sessions; `services` limits what the caller may see (None: all)."""
    after = parse_session_cursor(cursor) if cursor else None
    if services is not None:
        where = replace(where, services=frozenset(services))
    scan = await ctx.uow.sessions.export(where, after, limit, max(SESSION_SCAN, limit))
    resume = scan.resume
    return Page([session_row(s) for s in scan.found],
                _keyset_cursor(*resume) if resume is not None else None)


async def export_events(ctx: Ctx, where: EventFilter, after: int, limit: int,
                        services: Collection[str] | None = None) -> Page:
    """A page of events after sequence number `after`; `services` as for sessions."""
    if services is not None:
        where = replace(where, services=frozenset(services))
    scan = await ctx.uow.events.export(where, after, limit, max(EVENT_SCAN, limit))
    return Page([event_row(e) for e in scan.found],
                str(scan.resume) if scan.resume is not None else None)
