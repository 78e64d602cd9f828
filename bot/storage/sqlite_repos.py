"""The repositories of versioned documents on SQLite (agents, tasks, sessions), and what the
SQLite repositories share."""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from bot import jsonio
from bot.domain.agent import Agent, Availability
from bot.domain.customer import PHONE_SEPARATORS, phone_key
from bot.domain.routing import idle_key, queue_key
from bot.domain.service import Modality
from bot.domain.session import Phase, Session
from bot.domain.task import Task, TaskState
from bot.services.ports import CustomerQuery, Scan, SessionFilter, SessionSearch
from bot.storage.codec import decode, encode, micros
from bot.storage.sqlite_driver import Statements, from_ts, ts

E = TypeVar("E", Agent, Task, Session)


def dump(entity: Any) -> str:
    return jsonio.dumps(encode(entity))


def back(uow: Statements) -> Any:
    """A repository's way back to its unit of work, weak: a strong one would make every unit
    of work a reference cycle, all it read left for the cyclic collector instead of freed as
    it ends (full collections then stalled requests for tens of milliseconds)."""
    return weakref.proxy(uow)


class _Entities(Generic[E]):
    """Rows of one table holding a JSON document, a version and columns to query on."""

    table: str
    cls: type[E]

    def __init__(self, uow: Statements) -> None:
        self.uow: Statements = back(uow)

    def columns(self, entity: E) -> dict[str, Any]:
        raise NotImplementedError

    def _load(self, row: Sequence[Any]) -> E:
        """(id, version, data) as an entity: the one this unit of work has, else decoded."""
        key = (self.table, row[0])
        known = self.uow.identity.get(key)
        if known is not None:
            return known  # type: ignore[no-any-return]
        self.uow.read_ahead.pop(key, None)
        entity = decode(self.cls, jsonio.loads(row[2]))
        entity.version = row[1]
        self.uow.identity[key] = entity
        return entity

    async def _select(self, where: str, params: Sequence[Any] = ()) -> list[E]:
        rows = await self.uow.fetch(
            f"SELECT id, version, data FROM {self.table} WHERE {where}", params)
        return [self._load(r) for r in rows]

    async def get(self, entity_id: str) -> E | None:
        key = (self.table, entity_id)
        known = self.uow.identity.get(key)
        if known is not None:
            return known  # type: ignore[no-any-return]
        row = self.uow.read_ahead.get(key)  # read along with its session (SqliteSessions)
        if row is not None:
            return self._load(row)
        found = await self._select("id = ?", (entity_id,))
        return found[0] if found else None

    async def add(self, entity: E) -> None:
        """Insert it (held back: an existing id raises ConflictError by the next read or the
        commit at the latest)."""
        self.uow.versioned(entity, 1)
        cols: dict[str, Any] = self.columns(entity)
        names = ", ".join(["id", "version", "data", *cols])
        marks = ", ".join("?" * (3 + len(cols)))
        self.uow.write(
            f"INSERT INTO {self.table} ({names}) VALUES ({marks})",
            (entity.id, 1, dump(entity), *cols.values()))
        self.uow.identity[(self.table, entity.id)] = entity
        await self.after_write(entity)

    async def save(self, entity: E) -> None:
        """Update it if unchanged since read (held back: ConflictError by the next read or the
        commit at the latest)."""
        cols: dict[str, Any] = self.columns(entity)
        sets = ", ".join(f"{c} = ?" for c in ["version", "data", *cols])
        self.uow.write(
            f"UPDATE {self.table} SET {sets} WHERE id = ? AND version = ?",
            (entity.version + 1, dump(entity), *cols.values(), entity.id, entity.version),
            conflict=f"{self.table} {entity.id} changed since it was read")
        self.uow.versioned(entity, entity.version + 1)
        self.uow.identity[(self.table, entity.id)] = entity
        await self.after_write(entity)

    async def after_write(self, entity: E) -> None:
        return None


def _micros(moment: datetime | None) -> int | None:
    """Integer microseconds since the epoch (exact, so SQL compares as datetimes do)."""
    return None if moment is None else micros(moment)


# The longest-idle agents of a service and modality whose index row is ready: no RONA (one
# range of agent_slots_pick, in idle order, stopped by LIMIT), or a RONA run out but not yet
# cleared (a short range: such rows are rewritten as soon as the RONA timer fires).
_AVAILABLE = (
    "id IN (SELECT agent_id FROM (SELECT agent_id FROM agent_slots WHERE service_id = ?"
    " AND modality = ? AND ready_at IS NULL ORDER BY idle_at, agent_id LIMIT ?)"
    " UNION ALL SELECT agent_id FROM (SELECT agent_id FROM agent_slots WHERE service_id = ?"
    " AND modality = ? AND ready_at <= ? ORDER BY idle_at, agent_id LIMIT ?))")


class SqliteAgents(_Entities[Agent]):
    table = "agents"
    cls = Agent

    def columns(self, entity: Agent) -> dict[str, Any]:
        return {"registered": int(entity.registered)}

    async def after_write(self, entity: Agent) -> None:
        """Membership rows: only the services that left or joined are written (held back, no
        read: the statements themselves find what changed)."""
        wanted = list(dict.fromkeys(entity.services))
        if not wanted:
            self.uow.write("DELETE FROM agent_services WHERE agent_id = ?", (entity.id,))
            return
        self.uow.write(
            "DELETE FROM agent_services WHERE agent_id = ? AND service_id NOT IN ("
            + ", ".join("?" * len(wanted)) + ")", (entity.id, *wanted))
        self.uow.write(
            "INSERT OR IGNORE INTO agent_services (agent_id, service_id) VALUES "
            + ", ".join(["(?, ?)"] * len(wanted)),
            [v for service_id in wanted for v in (entity.id, service_id)])

    async def members(self, service_id: str) -> list[Agent]:
        return await self._select(
            "registered = 1 AND id IN (SELECT agent_id FROM agent_services WHERE service_id = ?)",
            (service_id,))

    async def registered(self) -> list[Agent]:
        return await self._select("registered = 1")

    async def set_availability(self, agent: Agent, availability: Availability) -> None:
        """The agent's agent_slots rows: only rows that go, come or change are written (held
        back, no read: the statements themselves find what changed)."""
        if not availability.slots:
            self.uow.write("DELETE FROM agent_slots WHERE agent_id = ?", (agent.id,))
            return
        ready, idle = _micros(availability.ready_at), _micros(agent.idle_since)
        slots = sorted((service_id, modality.value) for service_id, modality in availability.slots)
        self.uow.write(
            "DELETE FROM agent_slots WHERE agent_id = ? AND (service_id, modality) NOT IN"
            " (VALUES " + ", ".join(["(?, ?)"] * len(slots)) + ")",
            (agent.id, *(v for slot in slots for v in slot)))
        self.uow.write(
            "INSERT INTO agent_slots (service_id, modality, agent_id, ready_at, idle_at) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?)"] * len(slots))
            + " ON CONFLICT (service_id, modality, agent_id) DO UPDATE SET"
            " ready_at = excluded.ready_at, idle_at = excluded.idle_at"
            " WHERE ready_at IS NOT excluded.ready_at OR idle_at IS NOT excluded.idle_at",
            [v for service_id, modality in slots
             for v in (service_id, modality, agent.id, ready, idle)])

    async def available(self, service_id: str, modality: Modality, now: datetime,
                        limit: int) -> list[Agent]:
        if limit <= 0:
            return []
        found = await self._select(_AVAILABLE, (
            service_id, modality.value, limit, service_id, modality.value, _micros(now), limit))
        found.sort(key=idle_key)
        return found[:limit]


class SqliteTasks(_Entities[Task]):
    table = "tasks"
    cls = Task

    def columns(self, entity: Task) -> dict[str, Any]:
        return {"service_id": entity.service_id, "state": entity.state.value,
                "priority": entity.priority, "enqueued_at": ts(entity.enqueued_at)}

    async def queued(self, service_id: str, limit: int) -> list[Task]:
        # The SQL reads the tasks_queue index in `queue_key` order (for its LIMIT); the
        # domain's key says what that order is.
        found = await self._select(
            "service_id = ? AND state = 'queued' ORDER BY priority DESC, enqueued_at, id LIMIT ?",
            (service_id, limit))
        found.sort(key=lambda t: queue_key(t.priority, t.enqueued_at, t.id))
        return found

    async def position(self, task: Task) -> int:
        """1 + the waiting tasks before it in `queue_key` order (counted in SQL)."""
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

    async def about(self, who: CustomerQuery, limit: int) -> list[Task]:
        where, values = _about(who, "$.customer")
        return await self._select(f"({where}) LIMIT ?", (*values, limit))


class SqliteSessions(_Entities[Session]):
    table = "sessions"
    cls = Session

    def columns(self, entity: Session) -> dict[str, Any]:
        return {"task_id": entity.task_id, "agent_id": entity.agent_id,
                "service_id": entity.service_id, "phase": entity.phase.value,
                "offered_at": ts(entity.offered_at), "connected_at": ts(entity.connected_at),
                "chat_id": entity.chat_id, "card_id": entity.card_id,
                "search": entity.search_text()}

    async def for_task(self, task_id: str) -> list[Session]:
        return await self._select("task_id = ? ORDER BY offered_at, id", (task_id,))

    async def for_agent(self, agent_id: str, limit: int, offset: int = 0,
                        query: str | SessionSearch = "") -> list[Session]:
        search = query if isinstance(query, SessionSearch) else SessionSearch(text=query)
        where = ["agent_id = ?", "search LIKE ? ESCAPE '\\'"]
        values: list[Any] = [agent_id, "%" + escape_like(search.text.strip().lower()) + "%"]
        if search.results:
            marks = ", ".join("?" * len(search.results))
            where.append(f"json_extract(data, '$.result') IN ({marks})")
            values += sorted(search.results)
        if search.modality is not None:
            where.append("json_extract(data, '$.modality') = ?")
            values.append(search.modality)
        if search.since is not None:
            where.append("offered_at >= ?")
            values.append(ts(search.since))
        return await self._select(
            " AND ".join(where) + " ORDER BY offered_at DESC, id LIMIT ? OFFSET ?",
            (*values, limit, offset))

    async def connected_before(self, cutoff: datetime) -> list[Session]:
        return await self._select("phase = ? AND connected_at < ?",
                                  (Phase.CONNECTED.value, ts(cutoff)))

    async def get(self, session_id: str) -> Session | None:
        known = self.uow.identity.get((self.table, session_id))
        if known is not None:
            return known  # type: ignore[no-any-return]
        return await self._with_task_and_agent("id = ?", (session_id,))

    async def by_chat(self, chat_id: str) -> Session | None:
        """The chat's current session: a connected one first, else the latest."""
        return await self._with_task_and_agent(
            "chat_id = ? ORDER BY phase = 'connected' DESC, offered_at DESC LIMIT 1", (chat_id,))

    async def by_card(self, card_id: str) -> Session | None:
        return await self._with_task_and_agent("card_id = ? LIMIT 1", (card_id,))

    async def about(self, who: CustomerQuery, limit: int) -> list[Session]:
        where, values = _about(who, "$.customer")
        return await self._select(f"({where}) LIMIT ?", (*values, limit))

    async def _with_task_and_agent(self, where: str, params: Sequence[Any]) -> Session | None:
        """One session, reading its task's and its agent's rows in the same statement: nearly
        every use case that finds a session goes on to its task and agent, and a trip to the
        connection's thread costs far more than two primary-key lookups. Those rows are decoded
        only if asked for (`_Entities.get`), and never replace what this unit of work holds."""
        rows = await self.uow.fetch(
            "WITH s AS MATERIALIZED (SELECT id, version, data, task_id, agent_id FROM sessions"
            f" WHERE {where}) SELECT 0, id, version, data FROM s UNION ALL"
            " SELECT 1, id, version, data FROM tasks WHERE id IN (SELECT task_id FROM s)"
            " UNION ALL"
            " SELECT 2, id, version, data FROM agents WHERE id IN (SELECT agent_id FROM s)",
            params)
        found: Session | None = None
        for row in rows:
            if row[0] == 0:
                found = self._load(row[1:])
            else:
                key = ("tasks" if row[0] == 1 else "agents", row[1])
                if key not in self.uow.identity:
                    self.uow.read_ahead[key] = row[1:]
        return found

    async def export(self, where: SessionFilter, after: tuple[datetime, str] | None,
                     limit: int, scan: int) -> Scan[Session, tuple[datetime, str]]:
        """A window of at most `scan` sessions in (offered_at, id) order, read on the
        sessions_offered index, then the filters on it: the rows looked at stay bounded
        whatever the filters match. The last row says where the window ended."""
        window: list[str] = []
        values: list[Any] = []
        if after is not None:
            window.append("(offered_at, id) > (?, ?)")
            values += [ts(after[0]), after[1]]
        within(window, values, "offered_at", where.since, where.until)
        values.append(scan)
        clauses: list[str] = []
        match(clauses, values, (("service_id", where.service_id),
                                 ("agent_id", where.agent_id)), where.services)
        if where.result is not None:
            clauses.append("json_extract(data, '$.result') = ?")
            values.append(where.result)
        if where.tag is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(data, '$.tags') WHERE"
                           " lower(json_each.value) = ?)")
            values.append(where.tag.lower())
        values.append(limit)
        rows = await self.uow.fetch(
            "WITH w AS MATERIALIZED (SELECT id, version, data, offered_at, service_id, agent_id"
            f" FROM sessions WHERE {' AND '.join(window) or 'true'}"
            " ORDER BY offered_at, id LIMIT ?)"
            " SELECT * FROM (SELECT 0, id, version, data, offered_at FROM w"
            f" WHERE {' AND '.join(clauses) or 'true'} ORDER BY offered_at, id LIMIT ?)"
            " UNION ALL SELECT * FROM (SELECT (SELECT count(*) FROM w), id, NULL, NULL,"
            " offered_at FROM w ORDER BY offered_at DESC, id DESC LIMIT 1)", values)
        found = [self._load(row[1:4]) for row in rows if row[0] == 0 and row[2] is not None]
        if len(found) == limit:
            return Scan(found, (found[-1].offered_at, found[-1].id))
        tail = rows[-1] if rows and rows[-1][2] is None else None
        if tail is not None and tail[0] >= scan:  # the window was full: there may be more
            return Scan(found, (from_ts(tail[4]), str(tail[1])))
        return Scan(found, None)


def match(clauses: list[str], values: list[Any], equal: Iterable[tuple[str, str | None]],
           services: Iterable[str] | None) -> None:
    """Add an export's `column = value` filters (None: any) and its services to a query."""
    for column, value in equal:
        if value is not None:
            clauses.append(f"{column} = ?")
            values.append(value)
    if services is not None:
        chosen = sorted(services)
        clauses.append(f"service_id IN ({', '.join('?' * len(chosen))})")
        values += chosen


def within(clauses: list[str], values: list[Any], column: str, since: datetime | None,
           until: datetime | None) -> None:
    """Add an export's time window (`since` <= column < `until`, each None: open) to a query."""
    if since is not None:
        clauses.append(f"{column} >= ?")
        values.append(ts(since))
    if until is not None:
        clauses.append(f"{column} < ?")
        values.append(ts(until))


def _phone_sql(expr: str) -> str:
    for c in PHONE_SEPARATORS:
        expr = f"replace({expr}, '{c}', '')"
    return expr


def _about(who: CustomerQuery, path: str) -> tuple[str, list[Any]]:
    """A WHERE clause matching rows whose JSON customer at `path` matches `who`."""
    clauses: list[str] = []
    values: list[Any] = []
    if who.email.strip():
        clauses.append(f"lower(json_extract(data, '{path}.email')) = ?")
        values.append(who.email.strip().lower())
    if phone_key(who.phone):
        clauses.append(_phone_sql(f"json_extract(data, '{path}.phone')") + " = ?")
        values.append(phone_key(who.phone))
    if who.name.strip():
        clauses.append(f"lower(json_extract(data, '{path}.name')) = ?")
        values.append(who.name.strip().lower())
    return " OR ".join(clauses) or "false", values


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
