"""The repositories of plain rows on SQLite: events, timers, chat messages, counters, tags and
the webhook outbox."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bot import jsonio
from bot.domain.events import Event
from bot.domain.message import ChatMessage, Kind, Sender
from bot.domain.timers import Timer
from bot.domain.webhooks.model import Delivery
from bot.services.ports import EventFilter, Scan
from bot.storage.codec import decode, encode
from bot.storage.sqlite_driver import Statements, from_ts, ts
from bot.storage.sqlite_repos import back, dump, escape_like, match, within


class SqliteEvents:
    def __init__(self, uow: Statements) -> None:
        self.uow: Statements = back(uow)

    async def append(self, event: Event) -> None:
        """Held back: `event.seq` is set once it ran (by the next read or the commit)."""
        def numbered(lastrowid: Any) -> None:
            event.seq = int(lastrowid or 0)

        self.uow.write(
            "INSERT INTO events (at, name, task_id, session_id, agent_id, service_id, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ts(event.at), event.name, event.task_id, event.session_id, event.agent_id,
             event.service_id, jsonio.dumps(encode(event.data))),
            done=numbered)

    def _event(self, row: sqlite3.Row) -> Event:
        return Event(seq=row[0], at=from_ts(row[1]), name=row[2], task_id=row[3],
                     session_id=row[4], agent_id=row[5], service_id=row[6],
                     data=jsonio.loads(row[7]))

    async def after(self, seq: int, limit: int) -> list[Event]:
        rows = await self.uow.fetch(
            "SELECT seq, at, name, task_id, session_id, agent_id, service_id, data FROM events"
            " WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        return [self._event(r) for r in rows]

    async def for_task(self, task_id: str) -> list[Event]:
        rows = await self.uow.fetch(
            "SELECT seq, at, name, task_id, session_id, agent_id, service_id, data FROM events"
            " WHERE task_id = ? ORDER BY seq", (task_id,))
        return [self._event(r) for r in rows]

    async def export(self, where: EventFilter, after: int, limit: int,
                     scan: int) -> Scan[Event, int]:
        """The filters run in the query over a window of `scan` sequence numbers (a range of
        the primary key), so one read looks at no more rows than that."""
        clauses = ["seq > ?", "seq <= ?"]
        values: list[Any] = [after, after + scan]
        match(clauses, values, (("service_id", where.service_id),
                                 ("agent_id", where.agent_id), ("name", where.name)),
               where.services)
        within(clauses, values, "at", where.since, where.until)
        rows = await self.uow.fetch(
            "SELECT * FROM (SELECT seq, at, name, task_id, session_id, agent_id, service_id,"
            f" data FROM events WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?)"
            " UNION ALL SELECT max(seq), NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM events",
            (*values, limit))
        *hits, (top, *_) = rows
        found = [self._event(r) for r in hits]
        if len(found) == limit:
            return Scan(found, found[-1].seq)
        if top is not None and top > after + scan:
            return Scan(found, after + scan)
        return Scan(found, None)


class SqliteTimers:
    def __init__(self, uow: Statements) -> None:
        self.uow: Statements = back(uow)

    _COLUMNS = "kind, ref, due_at, lease_until, attempts, data, version"

    def _timer(self, row: sqlite3.Row) -> Timer:
        return Timer(kind=row[0], ref=row[1], due_at=from_ts(row[2]),
                     lease_until=from_ts(row[3]) if row[3] is not None else None,
                     attempts=row[4], data=jsonio.loads(row[5]), version=row[6])

    async def get(self, timer_id: str) -> Timer | None:
        rows = await self.uow.fetch(f"SELECT {self._COLUMNS} FROM timers WHERE id = ?",
                                    (timer_id,))
        return self._timer(rows[0]) if rows else None

    async def arm(self, timer: Timer, *, now: datetime | None = None) -> None:
        params = (timer.id, timer.kind, timer.ref, ts(timer.due_at), jsonio.dumps(timer.data))
        if now is None or timer.lease_until is None:
            self.uow.write(
                "INSERT INTO timers (id, version, kind, ref, due_at, lease_until, attempts, data)"
                " VALUES (?, 1, ?, ?, ?, NULL, 0, ?) ON CONFLICT (id) DO UPDATE SET"
                " due_at = excluded.due_at, attempts = 0,"
                " data = excluded.data, version = timers.version + 1", params)
            return

        asked = timer.lease_until

        def written(rows: list[sqlite3.Row]) -> None:
            timer.version, timer.attempts = rows[0]
            timer.lease_until = asked if timer.attempts == 1 else None  # 1: the lease taken

        # SET expressions see the row as it was: a lease someone holds at `now` stays.
        free = "(timers.lease_until IS NULL OR timers.lease_until <= ?)"
        self.uow.write(
            "INSERT INTO timers (id, version, kind, ref, due_at, lease_until, attempts, data)"
            " VALUES (?, 1, ?, ?, ?, ?, 1, ?) ON CONFLICT (id) DO UPDATE SET"
            f" due_at = excluded.due_at, attempts = CASE WHEN {free} THEN 1 ELSE 0 END,"
            f" lease_until = CASE WHEN {free} THEN excluded.lease_until"
            " ELSE timers.lease_until END,"
            " data = excluded.data, version = timers.version + 1"
            " RETURNING version, attempts",
            (*params[:4], ts(asked), params[4], ts(now), ts(now)),
            returning=True, done=written)

    async def cancel(self, timer_id: str) -> None:
        self.uow.write("DELETE FROM timers WHERE id = ?", (timer_id,))

    async def save(self, timer: Timer) -> None:
        self.uow.write(
            "UPDATE timers SET due_at = ?, lease_until = ?, attempts = ?, data = ?,"
            " version = version + 1 WHERE id = ? AND version = ?",
            (ts(timer.due_at), ts(timer.lease_until), timer.attempts, jsonio.dumps(timer.data),
             timer.id, timer.version),
            conflict=f"timer {timer.id} changed since it was read")
        self.uow.versioned(timer, timer.version + 1)

    async def delete(self, timer: Timer) -> None:
        self.uow.write("DELETE FROM timers WHERE id = ? AND version = ?",
                       (timer.id, timer.version),
                       conflict=f"timer {timer.id} changed or fired elsewhere")

    @staticmethod
    def _kinds(kinds: Iterable[str]) -> tuple[str, list[str]]:
        listed = list(kinds)
        return ", ".join("?" * len(listed)) or "NULL", listed

    async def due(self, now: datetime, limit: int, kinds: Sequence[str]) -> list[Timer]:
        marks, listed = self._kinds(kinds)
        rows = await self.uow.fetch(
            f"SELECT {self._COLUMNS} FROM timers WHERE due_at <= ? AND kind IN ({marks})"
            " AND (lease_until IS NULL OR lease_until <= ?) ORDER BY due_at LIMIT ?",
            (ts(now), *listed, ts(now), limit))
        return [self._timer(r) for r in rows]

    async def next_due_at(self, kinds: Sequence[str]) -> datetime | None:
        marks, listed = self._kinds(kinds)
        rows = await self.uow.fetch(
            "SELECT MIN(MAX(due_at, COALESCE(lease_until, due_at))) FROM timers"
            f" WHERE kind IN ({marks})", listed)
        value = rows[0][0] if rows else None
        return from_ts(value) if value is not None else None


def _set_seq(item: ChatMessage | Delivery, rows: list[sqlite3.Row]) -> None:
    """Number an appended row with the `seq` its INSERT ... RETURNING seq gave back."""
    item.seq = int(rows[0][0])


class SqliteMessages:
    def __init__(self, uow: Statements) -> None:
        self.uow: Statements = back(uow)

    async def append(self, message: ChatMessage) -> None:
        """Held back: `message.seq` is set once it ran (by the next read or the commit)."""
        self.uow.write(
            "INSERT INTO messages (task_id, seq, sender, agent_id, at, text, kind, data)"
            " VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE task_id = ?),"
            " ?, ?, ?, ?, ?, ?) RETURNING seq",
            (message.task_id, message.task_id, message.sender.value, message.agent_id,
             ts(message.at), message.text, message.kind.value, jsonio.dumps(message.data)),
            returning=True, done=functools.partial(_set_seq, message))

    async def after(self, task_id: str, seq: int, limit: int) -> list[ChatMessage]:
        rows = await self.uow.fetch(
            "SELECT task_id, seq, sender, agent_id, at, text, kind, data FROM messages"
            " WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?", (task_id, seq, limit))
        return [ChatMessage(task_id=r[0], seq=r[1], sender=Sender(r[2]), agent_id=r[3],
                            at=from_ts(r[4]), text=r[5], kind=Kind(r[6]), data=jsonio.loads(r[7]))
                for r in rows]

    async def last_seq(self, task_id: str) -> int:
        rows = await self.uow.fetch("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE task_id = ?",
                                    (task_id,))
        return int(rows[0][0])

    async def sent_at(self, task_id: str, sender: Sender, limit: int) -> list[datetime]:
        rows = await self.uow.fetch(
            "SELECT at FROM messages WHERE task_id = ? AND sender = ? ORDER BY seq DESC LIMIT ?",
            (task_id, sender.value, limit))
        return [from_ts(r[0]) for r in rows]

    async def forget(self, task_id: str, after: int, before: int | None = None) -> int:
        """Deleted, not blanked: with secure_delete on, the freed bytes are zeroed in the file,
        and the store truncates the WAL at its next checkpoint (`SqliteStore.checkpoint`)."""
        cursor = await self.uow.execute(
            "DELETE FROM messages WHERE task_id = ? AND seq > ? AND seq < ? AND kind = ?",
            (task_id, after, 2**62 if before is None else before, Kind.MESSAGE.value))
        # The unit of work that forgets lines also blanks the task's and sessions' context:
        # either way the WAL holds the old page images until truncated.
        self.uow.scrub()
        return max(0, cursor.rowcount)


class SqliteCounters:
    def __init__(self, uow: Statements) -> None:
        self.uow: Statements = back(uow)

    async def next(self, name: str) -> int:
        rows = await self.uow.fetch(
            "INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name)"
            " DO UPDATE SET value = value + 1 RETURNING value", (name,))
        return int(rows[0][0])


class SqliteTags:
    def __init__(self, uow: Statements) -> None:
        self.uow: Statements = back(uow)

    async def record(self, service_id: str, tags: Sequence[str], at: datetime) -> None:
        for tag in tags:
            self.uow.write(
                "INSERT INTO tags (service_id, tag_key, tag, uses, last_used)"
                " VALUES (?, ?, ?, 1, ?) ON CONFLICT (service_id, tag_key)"
                " DO UPDATE SET uses = uses + 1, last_used = excluded.last_used",
                (service_id, tag.lower(), tag, ts(at)))

    async def suggest(self, service_id: str, text: str, limit: int) -> list[str]:
        if not text:  # every tag matches, and as a prefix: the most used first (tags_top)
            rows = await self.uow.fetch(
                "SELECT tag FROM tags WHERE service_id = ?"
                " ORDER BY uses DESC, last_used DESC LIMIT ?", (service_id, limit))
            return [str(r[0]) for r in rows]
        pattern = "%" + escape_like(text.lower()) + "%"
        rows = await self.uow.fetch(
            "SELECT tag FROM tags WHERE service_id = ? AND tag_key LIKE ? ESCAPE '\\'"
            " ORDER BY (tag_key LIKE ? ESCAPE '\\') DESC, uses DESC, last_used DESC LIMIT ?",
            (service_id, pattern, escape_like(text.lower()) + "%", limit))
        return [str(r[0]) for r in rows]


class SqliteOutbox:
    def __init__(self, uow: Statements) -> None:
        self.uow: Statements = back(uow)

    async def append(self, delivery: Delivery) -> None:
        """Held back: `delivery.seq` is set once it ran (by the next read or the commit)."""
        self.uow.versioned(delivery, 1)
        self.uow.write(
            "INSERT INTO outbox (task_id, seq, version, data) VALUES"
            " (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox WHERE task_id = ?), 1, ?)"
            " RETURNING seq", (delivery.task_id, delivery.task_id, dump(delivery)),
            returning=True, done=functools.partial(_set_seq, delivery))

    async def pending(self, task_id: str, limit: int) -> list[Delivery]:
        rows = await self.uow.fetch(
            "SELECT seq, version, data FROM outbox WHERE task_id = ? ORDER BY seq LIMIT ?",
            (task_id, limit))
        found = []
        for row in rows:
            delivery = decode(Delivery, jsonio.loads(row[2]))
            delivery.seq, delivery.version = int(row[0]), int(row[1])
            found.append(delivery)
        return found

    async def save(self, delivery: Delivery) -> None:
        self.uow.write(
            "UPDATE outbox SET version = ?, data = ? WHERE task_id = ? AND seq = ?"
            " AND version = ?", (delivery.version + 1, dump(delivery), delivery.task_id,
                                 delivery.seq, delivery.version),
            conflict=f"outbox {delivery.task_id}/{delivery.seq} changed since read")
        self.uow.versioned(delivery, delivery.version + 1)

    async def delete(self, delivery: Delivery) -> None:
        self.uow.write(
            "DELETE FROM outbox WHERE task_id = ? AND seq = ? AND version = ?",
            (delivery.task_id, delivery.seq, delivery.version),
            conflict=f"outbox {delivery.task_id}/{delivery.seq} changed or gone")

