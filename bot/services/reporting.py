"""Reporting export: sessions and events as flat rows for Power BI and friends."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.events import Event
from bot.domain.session import RESULT_LABELS, Session
from bot.services.context import Ctx
from bot.services.ports import SessionFilter

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


def _session_cursor(session: Session) -> str:
    """Opaque and URL-safe: the (offered_at, id) keyset of the last row."""
    raw = f"{session.offered_at.isoformat()}|{session.id}".encode()
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


async def export_sessions(ctx: Ctx, where: SessionFilter, cursor: str | None, limit: int,
                          services: Collection[str] | None = None) -> Page:
    """A page of sessions; `services` limits what the caller may see (None: all)."""
    after = parse_session_cursor(cursor) if cursor else None
    rows: list[dict[str, Any]] = []
    last: Session | None = None
    while len(rows) < limit:
        batch = await ctx.uow.sessions.export(where, after, limit)
        for session in batch:
            last = session
            if services is None or session.service_id in services:
                rows.append(session_row(session))
                if len(rows) == limit:
                    break
        if len(batch) < limit or last is None:
            return Page(rows, _session_cursor(last) if last and len(rows) == limit else None)
        after = (last.offered_at, last.id)
    return Page(rows, _session_cursor(last) if last else None)


@dataclass(frozen=True)
class EventFilter:
    service_id: str | None = None
    agent_id: str | None = None
    name: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, event: Event, services: Collection[str] | None) -> bool:
        return ((self.service_id is None or event.service_id == self.service_id)
                and (services is None or event.service_id in services)
                and (self.agent_id is None or event.agent_id == self.agent_id)
                and (self.name is None or event.name == self.name)
                and (self.since is None or event.at >= self.since)
                and (self.until is None or event.at < self.until))


async def export_events(ctx: Ctx, where: EventFilter, after: int, limit: int,
                        services: Collection[str] | None = None) -> Page:
    rows: list[dict[str, Any]] = []
    cursor = after
    while len(rows) < limit:
        batch = await ctx.uow.events.after(cursor, 500)
        for event in batch:
            cursor = event.seq
            if where.matches(event, services):
                rows.append(event_row(event))
                if len(rows) == limit:
                    return Page(rows, str(cursor))
        if len(batch) < 500:
            return Page(rows, None)
    return Page(rows, str(cursor))
