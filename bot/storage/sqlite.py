"""The embedded default store: SQLite through aiosqlite, WAL, versioned rows."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

import aiosqlite

from bot.domain.agent import Agent
from bot.domain.events import Event
from bot.domain.message import ChatMessage, Kind, Sender
from bot.domain.session import Phase, Session
from bot.domain.task import Task, TaskState
from bot.domain.timers import Timer
from bot.services.ports import ConflictError, SessionFilter, StoreUnavailable
from bot.storage.codec import decode, encode
from bot.storage.schema import LATEST, MIGRATIONS
from bot.webhooks.model import Delivery

E = TypeVar("E", Agent, Task, Session)


def ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def from_ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _dump(entity: Any) -> str:
    return json.dumps(encode(entity), separators=(",", ":"), ensure_ascii=False)


def _translate(exc: sqlite3.Error, waited: float = 0.0, patience: float = 1.0) -> Exception:
    """A lost race is a conflict (retry on fresh state); a lock held past our patience, or a
    read-only file, means the store is unavailable for now."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        if waited >= patience:
            return StoreUnavailable(f"database locked for {waited:.1f}s")
        return ConflictError(f"database busy: {exc}")
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(f"row already exists: {exc}")
    return StoreUnavailable(f"database error: {exc}")


class SqliteStore:
    """One aiosqlite connection per store; units of work take turns on it."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 2000) -> None:
        self.path = str(path)
        self.busy_timeout_ms = busy_timeout_ms
        # Waiting this long for a lock means someone holds it, not that we lost a race.
        self.patience = busy_timeout_ms / 1000 * 0.9
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> Self:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        self._conn = conn
        await self._migrate()
        return self

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreUnavailable("the store is not open")
        return self._conn

    async def _migrate(self) -> None:
        async with self._lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                rows = await self.conn.execute_fetchall("PRAGMA user_version")
                current = int(next(iter(rows))[0])
                if current > LATEST:
                    raise StoreUnavailable(
                        f"{self.path} has schema {current}, newer than this build's {LATEST}")
                for version, statements in MIGRATIONS:
                    if version > current:
                        for statement in statements:
                            await self.conn.execute(statement)
                        await self.conn.execute(f"PRAGMA user_version = {version}")
                await self.conn.execute("COMMIT")
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise

    async def schema_version(self) -> int:
        rows = await self.conn.execute_fetchall("PRAGMA user_version")
        return int(next(iter(rows))[0])

    def unit_of_work(self) -> SqliteUnitOfWork:
        return SqliteUnitOfWork(self)

    async def ping(self) -> None:
        """Readable and writable right now: take the write lock briefly and let it go."""
        async with self._lock:
            try:
                await self.conn.execute("PRAGMA busy_timeout = 250")
                await self.conn.execute("BEGIN IMMEDIATE")
                await self.conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise StoreUnavailable(str(exc)) from exc
            finally:
                await self.conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


class SqliteUnitOfWork:
    """A transaction: reads see one snapshot, writes check versions, commit makes it all stick."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self._identity: dict[tuple[str, str], Any] = {}
        self._open = False
        self.agents = SqliteAgents(self)
        self.tasks = SqliteTasks(self)
        self.sessions = SqliteSessions(self)
        self.events = SqliteEvents(self)
        self.timers = SqliteTimers(self)
        self.messages = SqliteMessages(self)
        self.counters = SqliteCounters(self)
        self.tags = SqliteTags(self)
        self.outbox = SqliteOutbox(self)

    async def __aenter__(self) -> Self:
        await self.store._lock.acquire()
        try:
            await self.store.conn.execute("BEGIN")
        except BaseException:
            self.store._lock.release()
            raise
        self._open = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._open:
                await self.store.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        finally:
            self._open = False
            self.store._lock.release()

    async def guard(self, key: str) -> None:
        """Nothing to do: units of work that write are serialised here (one lock in-process,
        and across processes a write on an outdated WAL snapshot fails as a conflict)."""

    async def commit(self) -> None:
        try:
            await self.store.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        self._open = False

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        started = time.monotonic()
        try:
            return await self.store.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise _translate(exc, time.monotonic() - started, self.store.patience) from exc

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        started = time.monotonic()
        try:
            return list(await self.store.conn.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise _translate(exc, time.monotonic() - started, self.store.patience) from exc


class _Entities(Generic[E]):
    """Rows of one table holding a JSON document, a version and columns to query on."""

    table: str
    cls: type[E]

    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow = uow

    def columns(self, entity: E) -> dict[str, Any]:
        raise NotImplementedError

    def _load(self, row: sqlite3.Row) -> E:
        key = (self.table, row[0])
        known = self.uow._identity.get(key)
        if known is not None:
            return known  # type: ignore[no-any-return]
        entity = decode(self.cls, json.loads(row[2]))
        entity.version = row[1]
        self.uow._identity[key] = entity
        return entity

    async def _select(self, where: str, params: Sequence[Any] = ()) -> list[E]:
        rows = await self.uow.fetch(
            f"SELECT id, version, data FROM {self.table} WHERE {where}", params)
        return [self._load(r) for r in rows]

    async def get(self, entity_id: str) -> E | None:
        known = self.uow._identity.get((self.table, entity_id))
        if known is not None:
            return known  # type: ignore[no-any-return]
        found = await self._select("id = ?", (entity_id,))
        return found[0] if found else None

    async def add(self, entity: E) -> None:
        entity.version = 1
        cols: dict[str, Any] = self.columns(entity)
        names = ", ".join(["id", "version", "data", *cols])
        marks = ", ".join("?" * (3 + len(cols)))
        await self.uow.execute(
            f"INSERT INTO {self.table} ({names}) VALUES ({marks})",
            (entity.id, 1, _dump(entity), *cols.values()))
        self.uow._identity[(self.table, entity.id)] = entity
        await self.after_write(entity)

    async def save(self, entity: E) -> None:
        cols: dict[str, Any] = self.columns(entity)
        sets = ", ".join(f"{c} = ?" for c in ["version", "data", *cols])
        cursor = await self.uow.execute(
            f"UPDATE {self.table} SET {sets} WHERE id = ? AND version = ?",
            (entity.version + 1, _dump(entity), *cols.values(), entity.id, entity.version))
        if cursor.rowcount != 1:
            raise ConflictError(f"{self.table} {entity.id} changed since it was read")
        entity.version += 1
        self.uow._identity[(self.table, entity.id)] = entity
        await self.after_write(entity)

    async def after_write(self, entity: E) -> None:
        return None


class SqliteAgents(_Entities[Agent]):
    table = "agents"
    cls = Agent

    def columns(self, entity: Agent) -> dict[str, Any]:
        return {"registered": int(entity.registered)}

    async def after_write(self, entity: Agent) -> None:
        await self.uow.execute(
            "DELETE FROM agent_services WHERE agent_id = ?", (entity.id,))
        for service_id in entity.services:
            await self.uow.execute(
                "INSERT INTO agent_services (agent_id, service_id) VALUES (?, ?)",
                (entity.id, service_id))

    async def members(self, service_id: str) -> list[Agent]:
        return await self._select(
            "registered = 1 AND id IN (SELECT agent_id FROM agent_services WHERE service_id = ?)",
            (service_id,))

    async def registered(self) -> list[Agent]:
        return await self._select("registered = 1")


class SqliteTasks(_Entities[Task]):
    table = "tasks"
    cls = Task

    def columns(self, entity: Task) -> dict[str, Any]:
        return {"service_id": entity.service_id, "state": entity.state.value,
                "priority": entity.priority, "enqueued_at": ts(entity.enqueued_at)}

    async def queued(self, service_id: str, limit: int) -> list[Task]:
        return await self._select(
            "service_id = ? AND state = 'queued' ORDER BY priority DESC, enqueued_at, id LIMIT ?",
            (service_id, limit))

    async def position(self, task: Task) -> int:
        rows = await self.uow.fetch(
            "SELECT COUNT(*) FROM tasks WHERE service_id = ? AND state IN ('queued', 'ringing')"
            " AND (priority > ? OR (priority = ? AND (enqueued_at < ? OR"
            " (enqueued_at = ? AND id < ?))))",
            (task.service_id, task.priority, task.priority, ts(task.enqueued_at),
             ts(task.enqueued_at), task.id))
        return int(rows[0][0]) + 1

    async def live(self) -> list[Task]:
        states = [s.value for s in TaskState if not s.finished]
        marks = ", ".join("?" * len(states))
        return await self._select(f"state IN ({marks})", states)


class SqliteSessions(_Entities[Session]):
    table = "sessions"
    cls = Session

    def columns(self, entity: Session) -> dict[str, Any]:
        search = " ".join([entity.service_id, entity.service_name,
                           entity.customer_label or "", *entity.tags]).lower()
        return {"task_id": entity.task_id, "agent_id": entity.agent_id,
                "service_id": entity.service_id, "phase": entity.phase.value,
                "offered_at": ts(entity.offered_at), "connected_at": ts(entity.connected_at),
                "chat_id": entity.chat_id, "card_id": entity.card_id, "search": search}

    async def for_task(self, task_id: str) -> list[Session]:
        return await self._select("task_id = ? ORDER BY offered_at, id", (task_id,))

    async def for_agent(self, agent_id: str, limit: int, offset: int = 0,
                        query: str = "") -> list[Session]:
        pattern = "%" + _escape_like(query.strip().lower()) + "%"
        return await self._select(
            "agent_id = ? AND search LIKE ? ESCAPE '\\' ORDER BY offered_at DESC, id"
            " LIMIT ? OFFSET ?", (agent_id, pattern, limit, offset))

    async def connected_before(self, cutoff: datetime) -> list[Session]:
        return await self._select("phase = ? AND connected_at < ?",
                                  (Phase.CONNECTED.value, ts(cutoff)))

    async def by_chat(self, chat_id: str) -> Session | None:
        """The chat's current session: a connected one first, else the latest."""
        found = await self._select(
            "chat_id = ? ORDER BY phase = 'connected' DESC, offered_at DESC LIMIT 1", (chat_id,))
        return found[0] if found else None

    async def by_card(self, card_id: str) -> Session | None:
        found = await self._select("card_id = ? LIMIT 1", (card_id,))
        return found[0] if found else None

    async def export(self, where: SessionFilter, after: tuple[datetime, str] | None,
                     limit: int) -> list[Session]:
        clauses: list[str] = ["1 = 1"]
        values: list[Any] = []
        for column, value in (("service_id", where.service_id), ("agent_id", where.agent_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        if where.result is not None:
            clauses.append("json_extract(data, '$.result') = ?")
            values.append(where.result)
        if where.tag is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(data, '$.tags') WHERE"
                           " lower(json_each.value) = ?)")
            values.append(where.tag.lower())
        if where.since is not None:
            clauses.append("offered_at >= ?")
            values.append(ts(where.since))
        if where.until is not None:
            clauses.append("offered_at < ?")
            values.append(ts(where.until))
        if after is not None:
            clauses.append("(offered_at > ? OR (offered_at = ? AND id > ?))")
            values += [ts(after[0]), ts(after[0]), after[1]]
        return await self._select(
            " AND ".join(clauses) + " ORDER BY offered_at, id LIMIT ?", (*values, limit))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqliteEvents:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow = uow

    async def append(self, event: Event) -> None:
        cursor = await self.uow.execute(
            "INSERT INTO events (at, name, task_id, session_id, agent_id, service_id, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ts(event.at), event.name, event.task_id, event.session_id, event.agent_id,
             event.service_id, json.dumps(encode(event.data), separators=(",", ":"))))
        event.seq = int(cursor.lastrowid or 0)

    def _event(self, row: sqlite3.Row) -> Event:
        return Event(seq=row[0], at=from_ts(row[1]), name=row[2], task_id=row[3],
                     session_id=row[4], agent_id=row[5], service_id=row[6],
                     data=json.loads(row[7]))

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


class SqliteTimers:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow = uow

    _COLUMNS = "kind, ref, due_at, lease_until, attempts, data, version"

    def _timer(self, row: sqlite3.Row) -> Timer:
        return Timer(kind=row[0], ref=row[1], due_at=from_ts(row[2]),
                     lease_until=from_ts(row[3]) if row[3] is not None else None,
                     attempts=row[4], data=json.loads(row[5]), version=row[6])

    async def get(self, timer_id: str) -> Timer | None:
        rows = await self.uow.fetch(f"SELECT {self._COLUMNS} FROM timers WHERE id = ?",
                                    (timer_id,))
        return self._timer(rows[0]) if rows else None

    async def arm(self, timer: Timer) -> None:
        await self.uow.execute(
            "INSERT INTO timers (id, version, kind, ref, due_at, lease_until, attempts, data)"
            " VALUES (?, 1, ?, ?, ?, NULL, 0, ?) ON CONFLICT (id) DO UPDATE SET"
            " due_at = excluded.due_at, attempts = 0,"
            " data = excluded.data, version = timers.version + 1",
            (timer.id, timer.kind, timer.ref, ts(timer.due_at), json.dumps(timer.data)))

    async def cancel(self, timer_id: str) -> None:
        await self.uow.execute("DELETE FROM timers WHERE id = ?", (timer_id,))

    async def save(self, timer: Timer) -> None:
        cursor = await self.uow.execute(
            "UPDATE timers SET due_at = ?, lease_until = ?, attempts = ?, data = ?,"
            " version = version + 1 WHERE id = ? AND version = ?",
            (ts(timer.due_at), ts(timer.lease_until), timer.attempts, json.dumps(timer.data),
             timer.id, timer.version))
        if cursor.rowcount != 1:
            raise ConflictError(f"timer {timer.id} changed since it was read")
        timer.version += 1

    async def delete(self, timer: Timer) -> None:
        cursor = await self.uow.execute("DELETE FROM timers WHERE id = ? AND version = ?",
                                        (timer.id, timer.version))
        if cursor.rowcount != 1:
            raise ConflictError(f"timer {timer.id} changed or fired elsewhere")

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


class SqliteMessages:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow = uow

    async def append(self, message: ChatMessage) -> None:
        rows = await self.uow.fetch(
            "INSERT INTO messages (task_id, seq, sender, agent_id, at, text, kind, data)"
            " VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE task_id = ?),"
            " ?, ?, ?, ?, ?, ?) RETURNING seq",
            (message.task_id, message.task_id, message.sender.value, message.agent_id,
             ts(message.at), message.text, message.kind.value, json.dumps(message.data)))
        message.seq = int(rows[0][0])

    async def after(self, task_id: str, seq: int, limit: int) -> list[ChatMessage]:
        rows = await self.uow.fetch(
            "SELECT task_id, seq, sender, agent_id, at, text, kind, data FROM messages"
            " WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?", (task_id, seq, limit))
        return [ChatMessage(task_id=r[0], seq=r[1], sender=Sender(r[2]), agent_id=r[3],
                            at=from_ts(r[4]), text=r[5], kind=Kind(r[6]), data=json.loads(r[7]))
                for r in rows]


class SqliteCounters:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow = uow

    async def next(self, name: str) -> int:
        rows = await self.uow.fetch(
            "INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name)"
            " DO UPDATE SET value = value + 1 RETURNING value", (name,))
        return int(rows[0][0])


class SqliteTags:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow = uow

    async def record(self, service_id: str, tags: Sequence[str], at: datetime) -> None:
        for tag in tags:
            await self.uow.execute(
                "INSERT INTO tags (service_id, tag_key, tag, uses, last_used)"
                " VALUES (?, ?, ?, 1, ?) ON CONFLICT (service_id, tag_key)"
                " DO UPDATE SET uses = uses + 1, last_used = excluded.last_used",
                (service_id, tag.lower(), tag, ts(at)))

    async def suggest(self, service_id: str, text: str, limit: int) -> list[str]:
        pattern = "%" + _escape_like(text.lower()) + "%"
        rows = await self.uow.fetch(
            "SELECT tag FROM tags WHERE service_id = ? AND tag_key LIKE ? ESCAPE '\\'"
            " ORDER BY (tag_key LIKE ? ESCAPE '\\') DESC, uses DESC, last_used DESC LIMIT ?",
            (service_id, pattern, _escape_like(text.lower()) + "%", limit))
        return [str(r[0]) for r in rows]


class SqliteOutbox:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow = uow

    async def append(self, delivery: Delivery) -> None:
        delivery.version = 1
        rows = await self.uow.fetch(
            "INSERT INTO outbox (task_id, seq, version, data) VALUES"
            " (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox WHERE task_id = ?), 1, ?)"
            " RETURNING seq", (delivery.task_id, delivery.task_id, _dump(delivery)))
        delivery.seq = int(rows[0][0])

    async def pending(self, task_id: str, limit: int) -> list[Delivery]:
        rows = await self.uow.fetch(
            "SELECT seq, version, data FROM outbox WHERE task_id = ? ORDER BY seq LIMIT ?",
            (task_id, limit))
        found = []
        for row in rows:
            delivery = decode(Delivery, json.loads(row[2]))
            delivery.seq, delivery.version = int(row[0]), int(row[1])
            found.append(delivery)
        return found

    async def save(self, delivery: Delivery) -> None:
        cursor = await self.uow.execute(
            "UPDATE outbox SET version = ?, data = ? WHERE task_id = ? AND seq = ?"
            " AND version = ?", (delivery.version + 1, _dump(delivery), delivery.task_id,
                                 delivery.seq, delivery.version))
        if cursor.rowcount != 1:
            raise ConflictError(f"outbox {delivery.task_id}/{delivery.seq} changed since read")
        delivery.version += 1

    async def delete(self, delivery: Delivery) -> None:
        cursor = await self.uow.execute(
            "DELETE FROM outbox WHERE task_id = ? AND seq = ? AND version = ?",
            (delivery.task_id, delivery.seq, delivery.version))
        if cursor.rowcount != 1:
            raise ConflictError(f"outbox {delivery.task_id}/{delivery.seq} changed or gone")


async def open_sqlite(path: str | Path) -> SqliteStore:
    return await SqliteStore(path).open()


