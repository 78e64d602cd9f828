"""The repositories of the Cosmos DB store: one class per storage port.

Document layouts, partition keys and index entries are described in `bot.storage.cosmos`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.cosmos import exceptions as cosmos_errors

from bot.domain.agent import Agent, Availability
from bot.domain.events import Event
from bot.domain.message import ChatMessage
from bot.domain.routing import idle_key
from bot.domain.service import Modality
from bot.domain.session import Phase, Session
from bot.domain.task import Task, TaskState
from bot.domain.timers import Timer
from bot.services.ports import ConflictError, EventFilter, Scan, SessionFilter, SessionSearch
from bot.services.privacy import RETENTION
from bot.storage.codec import decode, encode
from bot.storage.codec import micros as us
from bot.storage.cosmos_core import (
    AGENTS,
    EVENTS,
    MAX_BATCH,
    MESSAGES,
    META,
    SESSIONS,
    TASKS,
    TIMERS,
    Doc,
    DocWrite,
    Hooks,
    MessageWrite,
    UnitOfWorkCore,
    from_us,
    gather_limited,
    is_conflict,
    iter_query,
    params,
    query_all,
    read_item,
    sid,
    unavailable,
)
from bot.webhooks.model import Delivery

E = TypeVar("E", Agent, Task, Session)

TtlPolicy = Callable[[str, object], int | None]
"""(container, domain object) -> seconds to keep the item, -1 forever, None: container default"""

# Customer data outlives its task's last write by the purge horizon plus a week: the purge
# timer (bot.services.privacy) removes it first whenever an instance runs; the TTL is for the
# day none does. Every write renews an item's TTL (Cosmos DB counts from the last write).
CUSTOMER_DATA_TTL = int((RETENTION + timedelta(days=7)).total_seconds())


def customer_data_ttl(container: str, obj: object) -> int | None:
    """The default retention: chat lines always, and a task or session document while it holds
    customer context, expire CUSTOMER_DATA_TTL seconds after their last write; a document whose
    context is gone (conclusion, purge) is written without a TTL and stays."""
    if container == MESSAGES:
        return CUSTOMER_DATA_TTL
    if isinstance(obj, Task) and (not obj.customer.is_empty() or obj.customer_label
                                  or obj.content):
        return CUSTOMER_DATA_TTL
    if isinstance(obj, Session) and obj.customer is not None and (
            not obj.customer.is_empty() or obj.customer_label):
        return CUSTOMER_DATA_TTL
    return None

WAITING = (TaskState.QUEUED.value, TaskState.RINGING.value)
FINISHED = tuple(s.value for s in TaskState if s.finished)
LIVE = tuple(s.value for s in TaskState if not s.finished)
ROSTER = "agents"  # the one partition of the agents container
TIMER_PARTITION = "timers"  # the one partition of the timers container
EVENT_SEQ = ("seq|events", "events")  # (pk, id) in meta of the global event counter
ORPHAN_GRACE = 300.0  # seconds before an index entry whose item never appeared is dropped


def queue_pk(service_id: str) -> str:
    return f"queue|{service_id}"


def chat_pk(chat_id: str) -> str:
    return f"chat|{chat_id}"


class _Repo:
    def __init__(self, uow: UnitOfWorkCore, ttl: TtlPolicy | None) -> None:
        self.uow = uow
        self.ttl = ttl

    def _with_ttl(self, container: str, obj: object, doc: Doc) -> Doc:
        if self.ttl is not None:
            seconds = self.ttl(container, obj)
            if seconds is not None:
                doc["ttl"] = seconds
        return doc


# -- entities: agents, tasks, sessions --------------------------------------------------------

class _Entities(_Repo, Generic[E]):
    """Versioned documents holding an encoded entity, plus top-level fields to query on."""

    container: ClassVar[str]
    cls: type[E]
    hooks: ClassVar[Hooks | None] = None

    def pk(self, entity_id: str) -> str:
        return sid(entity_id)

    def fields(self, entity: E) -> Doc:
        return {}

    def to_doc(self, entity: E) -> Doc:
        doc: Doc = {"id": sid(entity.id), "pk": self.pk(entity.id), "version": entity.version,
                    **self.fields(entity), "data": encode(entity)}
        return self._with_ttl(self.container, entity, doc)

    def load(self, doc: Doc) -> E:
        key = (self.container, str(doc["id"]))
        known = self.uow.objects.get(key)
        if known is not None:
            return known  # type: ignore[no-any-return]
        self.uow.remember(self.container, doc)
        entity = decode(self.cls, doc["data"])
        entity.version = int(doc["version"])
        self.uow.objects[key] = entity
        return entity

    async def _view(self, entity_id: str) -> Doc | None:
        state = await self.uow.state(self.container, self.pk(entity_id), sid(entity_id))
        return state.view

    async def get(self, entity_id: str) -> E | None:
        known = self.uow.objects.get((self.container, sid(entity_id)))
        if known is not None:
            return known  # type: ignore[no-any-return]
        view = await self._view(entity_id)
        return self.load(view) if view is not None else None

    async def add(self, entity: E) -> None:
        key = (self.container, sid(entity.id))
        state = self.uow.docs.get(key)
        if key in self.uow.objects or (state is not None and state.view is not None):
            raise ConflictError(f"{self.container} {entity.id} already exists")
        entity.version = 1
        doc = self.to_doc(entity)
        self.uow.buffer(DocWrite(self.container, self.pk(entity.id), sid(entity.id), new=doc,
                                 expect_exists=False, hooks=self.hooks), doc)
        self.uow.objects[key] = entity

    async def save(self, entity: E) -> None:
        view = await self._view(entity.id)
        if view is None or int(view["version"]) != entity.version:
            raise ConflictError(f"{self.container} {entity.id} changed since it was read")
        entity.version += 1
        doc = self.to_doc(entity)
        self.uow.buffer(DocWrite(self.container, self.pk(entity.id), sid(entity.id), new=doc,
                                 hooks=self.hooks), doc)
        self.uow.objects[(self.container, sid(entity.id))] = entity

    async def _select(self, sql: str, values: dict[str, Any], keep: Callable[[Doc], bool], *,
                      pk: str | None = None) -> list[Doc]:
        found = await query_all(self.uow.container(self.container), sql, params(**values), pk=pk)
        return self.uow.overlay(self.container, found, keep)


def _slot(service_id: str, modality: Modality | str) -> str:
    return f"{service_id}|{Modality(modality).value}"


def _idle_order(agent: Agent) -> str:
    """`bot.domain.routing.idle_key` as one string: never idle first, then oldest, then id."""
    if agent.idle_since is None:
        return f"0|{agent.id}"
    return f"1|{max(0, us(agent.idle_since)):020d}|{agent.id}"


class CosmosAgents(_Entities[Agent]):
    """The availability index is denormalised into each agent's document, so it is written
    with the agent, atomically: ``slots`` ("<service>|<modality>" pairs the agent may be offered,
    from `bot.domain.agent.availability`: they depend on the catalog, so `set_availability`
    sets them and every other write keeps them), ``ready`` (end of RONA, microseconds, 0: none)
    and ``idle`` (the idle order as a string). `available` is one single-partition query."""

    container = AGENTS
    cls = Agent

    def __init__(self, uow: UnitOfWorkCore, ttl: TtlPolicy | None) -> None:
        super().__init__(uow, ttl)
        self._built: dict[str, Doc] = {}  # agent id -> the document last buffered for it

    def pk(self, entity_id: str) -> str:
        return ROSTER

    def fields(self, entity: Agent) -> Doc:
        known = self.uow.docs.get((self.container, sid(entity.id)))
        slots = (known.view or {}).get("slots", []) if known is not None else []
        return {"registered": entity.registered, "services": list(entity.services),
                "slots": list(slots),
                "ready": us(entity.rona_until) if entity.rona_until is not None else 0,
                "idle": _idle_order(entity)}

    def to_doc(self, entity: Agent) -> Doc:
        doc = super().to_doc(entity)
        self._built[entity.id] = doc
        return doc

    async def set_availability(self, agent: Agent, availability: Availability) -> None:
        want = sorted(_slot(s, m) for s, m in availability.slots)
        state = await self.uow.state(self.container, ROSTER, sid(agent.id))
        if state.view is None:
            return
        if state.view.get("slots") == want and "idle" in state.view:
            return
        if not (state.pending and self._built.get(agent.id) is state.view):
            # Only the index changed (a new catalog): the agent is written for it.
            await self.save(agent)
        # The document the agent's buffered write carries: it goes out with these slots.
        self._built[agent.id]["slots"] = want

    async def available(self, service_id: str, modality: Modality, now: datetime,
                        limit: int) -> list[Agent]:
        if limit <= 0:
            return []
        slot, moment = _slot(service_id, modality), us(now)
        # Our own buffered writes may drop some of what the database answers: ask for more.
        want = limit + sum(1 for _ in self.uow.pending_views(self.container))
        docs = await self._select(
            "SELECT TOP @n * FROM c WHERE c.pk = @pk AND ARRAY_CONTAINS(c.slots, @slot)"
            " AND c.ready <= @now ORDER BY c.idle",
            {"n": want, "pk": ROSTER, "slot": slot, "now": moment},
            lambda d: slot in d.get("slots", []) and int(d.get("ready", 0)) <= moment, pk=ROSTER)
        agents = sorted((self.load(d) for d in docs), key=idle_key)
        return agents[:limit]

    async def members(self, service_id: str) -> list[Agent]:
        docs = await self._select(
            "SELECT * FROM c WHERE c.pk = @pk AND c.registered = true"
            " AND ARRAY_CONTAINS(c.services, @service)", {"pk": ROSTER, "service": service_id},
            lambda d: bool(d["registered"]) and service_id in d["services"], pk=ROSTER)
        return [self.load(d) for d in sorted(docs, key=lambda d: str(d["id"]))]

    async def registered(self) -> list[Agent]:
        docs = await self._select(
            "SELECT * FROM c WHERE c.pk = @pk AND c.registered = true", {"pk": ROSTER},
            lambda d: bool(d["registered"]), pk=ROSTER)
        return [self.load(d) for d in sorted(docs, key=lambda d: str(d["id"]))]


def _waiting_in(doc: Doc | None, service_id: str | None = None) -> bool:
    return (doc is not None and doc["state"] in WAITING
            and (service_id is None or doc["service_id"] == service_id))


Order = tuple[int, int, str]


def _queue_order(priority: int, enqueued: int, task_id: str) -> Order:
    return (-priority, enqueued, task_id)


class QueueIndex:
    """Entries `queue|<service>` in meta: which tasks wait (queued or ringing) in a service.

    An entry is written before the task write that makes the task wait there, and removed after a
    committed write that ends its wait, only if the entry is not newer than that write. So every
    waiting task has its entry; an entry without a waiting task (a write that lost its race) is
    skipped by readers, which drop it once the task has finished.
    """

    async def before(self, uow: UnitOfWorkCore, cur: Doc | None, new: Doc | None) -> None:
        if new is None or not _waiting_in(new):
            return
        if (_waiting_in(cur, new["service_id"]) and cur is not None
                and (cur["priority"], cur["enq"]) == (new["priority"], new["enq"])):
            return  # already waiting there: its entry exists
        await self.ensure(uow, new)

    async def after(self, uow: UnitOfWorkCore, cur: Doc | None, new: Doc | None) -> None:
        if cur is None or not _waiting_in(cur):
            return
        if _waiting_in(new, cur["service_id"]):
            return
        version = int(new["version"]) if new is not None else math.inf
        await self.drop(uow, cur["service_id"], cur["data"]["id"], version)

    @staticmethod
    async def ensure(uow: UnitOfWorkCore, task: Doc) -> None:
        meta = uow.container(META)
        task_id = str(task["data"]["id"])
        entry: Doc = {"id": sid(task_id), "pk": queue_pk(task["service_id"]), "kind": "queue",
                      "task_id": task_id, "v": task["version"], "priority": task["priority"],
                      "enq": task["enq"]}
        for _ in range(uow.options_write_retries):
            try:
                try:
                    await meta.create_item(entry)
                    return
                except cosmos_errors.CosmosResourceExistsError:
                    pass
                found = await read_item(meta, entry["pk"], entry["id"])
                if found is None:
                    continue
                if int(found["v"]) > int(entry["v"]):
                    return  # a newer write already described the task
                await meta.replace_item(entry["id"], entry, etag=found["_etag"],
                                        match_condition=MatchConditions.IfNotModified)
                return
            except cosmos_errors.CosmosHttpResponseError as exc:
                if not is_conflict(exc):
                    raise unavailable(exc) from exc
            except AzureError as exc:
                raise unavailable(exc) from exc
        raise ConflictError(f"queue entry of task {task_id} kept changing")

    @staticmethod
    async def drop(uow: UnitOfWorkCore, service_id: str, task_id: str,
                   version: float) -> None:
        meta = uow.container(META)
        for _ in range(uow.options_write_retries):
            found = await read_item(meta, queue_pk(service_id), sid(task_id))
            if found is None or int(found["v"]) > version:
                return
            try:
                await meta.delete_item(found["id"], partition_key=found["pk"],
                                       etag=found["_etag"],
                                       match_condition=MatchConditions.IfNotModified)
                return
            except cosmos_errors.CosmosResourceNotFoundError:
                return
            except cosmos_errors.CosmosHttpResponseError as exc:
                if not is_conflict(exc):
                    raise unavailable(exc) from exc
            except AzureError as exc:
                raise unavailable(exc) from exc


class CosmosTasks(_Entities[Task]):
    container = TASKS
    cls = Task
    hooks: ClassVar[Hooks | None] = QueueIndex()

    def fields(self, entity: Task) -> Doc:
        return {"service_id": entity.service_id, "state": entity.state.value,
                "priority": entity.priority, "enq": us(entity.enqueued_at)}

    async def _waiting(self, service_id: str) -> dict[str, tuple[Order, Doc | None]]:
        """Tasks waiting in a service per its queue entries and this unit of work's writes."""
        entries = await query_all(self.uow.container(META),
                                  "SELECT * FROM c WHERE c.pk = @pk",
                                  params(pk=queue_pk(service_id)), pk=queue_pk(service_id))
        found: dict[str, tuple[Order, Doc | None]] = {
            str(e["task_id"]): (_queue_order(int(e["priority"]), int(e["enq"]),
                                             str(e["task_id"])), e)
            for e in entries}
        for _, view in self.uow.pending_views(TASKS):
            if view is None:
                continue
            task_id = str(view["data"]["id"])
            if _waiting_in(view, service_id):
                entry = found.get(task_id, (None, None))[1]
                found[task_id] = (_queue_order(int(view["priority"]), int(view["enq"]),
                                               task_id), entry)
            else:
                found.pop(task_id, None)
        return found

    async def queued(self, service_id: str, limit: int) -> list[Task]:
        waiting = await self._waiting(service_id)
        order = sorted(waiting.items(), key=lambda item: item[1][0])
        chosen: list[Doc] = []
        width = max(8, limit)
        for start in range(0, len(order), width):
            chunk = order[start:start + width]
            docs = await gather_limited([self._loader(task_id) for task_id, _ in chunk])
            for (task_id, (_, entry)), doc in zip(chunk, docs, strict=True):
                if doc is not None and doc["state"] == TaskState.QUEUED.value \
                        and doc["service_id"] == service_id:
                    chosen.append(doc)
                elif entry is not None and not self._pending(task_id):
                    await self._tidy(entry, doc)
            if len(chosen) >= limit:
                break
        chosen.sort(key=lambda d: _queue_order(int(d["priority"]), int(d["enq"]),
                                               str(d["data"]["id"])))
        return [self.load(d) for d in chosen[:limit]]

    def _loader(self, task_id: str) -> Callable[[], Any]:
        return lambda: self._view(task_id)

    def _pending(self, task_id: str) -> bool:
        state = self.uow.docs.get((TASKS, sid(task_id)))
        return state is not None and state.pending

    async def _tidy(self, entry: Doc, task: Doc | None) -> None:
        """Drop a queue entry whose task has finished, or never came to be."""
        if task is not None and task["state"] not in FINISHED:
            return
        if task is None and float(entry.get("_ts", 0)) > time.time() - ORPHAN_GRACE:
            return  # its task may still be on its way
        # If it fails, someone else tidied or re-used the entry.
        with contextlib.suppress(cosmos_errors.CosmosHttpResponseError, AzureError):
            await self.uow.container(META).delete_item(
                entry["id"], partition_key=entry["pk"], etag=entry["_etag"],
                match_condition=MatchConditions.IfNotModified)

    async def position(self, task: Task) -> int:
        waiting = await self._waiting(task.service_id)
        mine = _queue_order(task.priority, us(task.enqueued_at), task.id)
        return 1 + sum(1 for task_id, (order, _) in waiting.items()
                       if task_id != task.id and order < mine)

    async def live(self) -> list[Task]:
        docs = await self._select("SELECT * FROM c WHERE ARRAY_CONTAINS(@states, c.state)",
                                  {"states": list(LIVE)}, lambda d: d["state"] in LIVE)
        docs.sort(key=lambda d: (int(d["enq"]), str(d["id"])))
        return [self.load(d) for d in docs]


class ChatIndex:
    """Entries `chat|<chat id>` in meta: the sessions relayed in a chat, with a `live` hint.

    The entry is created (live) before the first write that gives a session its chat, so every
    session of a chat has one. `live` turns false after a committed write leaves the connected
    phase; a session never returns to it, so a stale hint can only say live of a session that is
    not, which the reader checks against the session itself.
    """

    async def before(self, uow: UnitOfWorkCore, cur: Doc | None, new: Doc | None) -> None:
        if new is None or not new.get("chat_id"):
            return
        if cur is not None and cur.get("chat_id") == new["chat_id"]:
            return
        try:
            await uow.container(META).create_item(self._entry(new, live=True))
        except cosmos_errors.CosmosResourceExistsError:
            pass
        except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
            raise unavailable(exc) from exc

    async def after(self, uow: UnitOfWorkCore, cur: Doc | None, new: Doc | None) -> None:
        if new is None or not new.get("chat_id") or new["phase"] == Phase.CONNECTED.value:
            return
        if (cur is not None and cur.get("chat_id") == new["chat_id"]
                and cur["phase"] != Phase.CONNECTED.value):
            return
        try:
            await uow.container(META).upsert_item(self._entry(new, live=False))
        except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
            raise unavailable(exc) from exc

    @staticmethod
    def _entry(session: Doc, *, live: bool) -> Doc:
        session_id = str(session["data"]["id"])
        return {"id": sid(session_id), "pk": chat_pk(session["chat_id"]), "kind": "chat",
                "session_id": session_id, "offered": session["offered"], "live": live}


class CosmosSessions(_Entities[Session]):
    container = SESSIONS
    cls = Session
    hooks: ClassVar[Hooks | None] = ChatIndex()

    def fields(self, entity: Session) -> Doc:
        search = entity.search_text()
        return {"task_id": entity.task_id, "agent_id": entity.agent_id,
                "service_id": entity.service_id, "phase": entity.phase.value,
                "offered": us(entity.offered_at),
                "connected": us(entity.connected_at) if entity.connected_at else None,
                "chat_id": entity.chat_id, "card_id": entity.card_id, "search": search,
                "result": entity.result.value if entity.result else None,
                "tags": [t.lower() for t in entity.tags]}

    async def export(self, where: SessionFilter, after: tuple[datetime, str] | None,
                     limit: int, scan: int) -> Scan[Session, tuple[datetime, str]]:
        """A reporting read: cross-partition, ordered by offer time, keyset-paged. Every
        filter is in the query, so the service looks at the rows and only matches come here
        (a page of the query may come back empty: the service bounds its own work)."""
        sql = ["SELECT * FROM c WHERE true"]
        values: dict[str, Any] = {}
        for name, value in (("service_id", where.service_id), ("agent_id", where.agent_id),
                            ("result", where.result)):
            if value is not None:
                sql.append(f"AND c.{name} = @{name}")
                values[name] = value
        if where.services is not None:
            sql.append("AND ARRAY_CONTAINS(@services, c.service_id)")
            values["services"] = sorted(where.services)
        if where.tag is not None:
            sql.append("AND ARRAY_CONTAINS(c.tags, @tag)")
            values["tag"] = where.tag.lower()
        if where.since is not None:
            sql.append("AND c.offered >= @since")
            values["since"] = us(where.since)
        if where.until is not None:
            sql.append("AND c.offered < @until")
            values["until"] = us(where.until)
        if after is not None:
            sql.append("AND c.offered >= @after")
            values["after"] = us(after[0])
        sql.append("ORDER BY c.offered")
        found: list[Doc] = []
        rows = iter_query(self.uow.container(SESSIONS), " ".join(sql), params(**values),
                          page_size=min(max(limit, 10), 200))
        async with contextlib.aclosing(rows):
            async for doc in rows:
                key = (int(doc["offered"]), str(doc["data"]["id"]))
                if after is not None and key <= (us(after[0]), after[1]):
                    continue
                found.append(doc)
                if len(found) > limit and int(doc["offered"]) > int(found[limit - 1]["offered"]):
                    break
                if len(found) > scan:  # ties on one offer time past the bound: read no more
                    break
        found.sort(key=lambda d: (int(d["offered"]), str(d["data"]["id"])))
        sessions = [self.load(d) for d in found[:limit]]
        if len(sessions) == limit:
            return Scan(sessions, (sessions[-1].offered_at, sessions[-1].id))
        return Scan(sessions, None)

    async def for_task(self, task_id: str) -> list[Session]:
        docs = await self._select("SELECT * FROM c WHERE c.task_id = @task", {"task": task_id},
                                  lambda d: d["task_id"] == task_id)
        docs.sort(key=lambda d: (int(d["offered"]), str(d["data"]["id"])))
        return [self.load(d) for d in docs]

    async def for_agent(self, agent_id: str, limit: int, offset: int = 0,
                        query: str | SessionSearch = "") -> list[Session]:
        if limit <= 0:
            return []
        search = query if isinstance(query, SessionSearch) else SessionSearch(text=query)
        text = search.text.strip().lower()
        since = us(search.since) if search.since is not None else None
        sql = "SELECT * FROM c WHERE c.agent_id = @agent"
        values: dict[str, Any] = {"agent": agent_id}
        if text:
            sql += " AND CONTAINS(c.search, @text)"
            values["text"] = text
        if search.results:
            sql += " AND ARRAY_CONTAINS(@results, c.result)"
            values["results"] = sorted(search.results)
        if search.modality is not None:
            sql += " AND c.data.modality = @modality"
            values["modality"] = search.modality
        if since is not None:
            sql += " AND c.offered >= @since"
            values["since"] = since
        sql += " ORDER BY c.offered DESC"
        # Pages until the rows asked for are in, plus as many as this unit of work's own writes
        # could displace, plus every row tied with the last one (ties are ordered by id here).
        need = offset + limit + sum(1 for _ in self.uow.pending_views(SESSIONS))
        found: list[Doc] = []
        rows = iter_query(self.uow.container(SESSIONS), sql, params(**values),
                          page_size=min(max(need, 10), 200))
        async with contextlib.aclosing(rows):
            async for doc in rows:
                if len(found) >= need and int(doc["offered"]) < int(found[need - 1]["offered"]):
                    break
                found.append(doc)

        def keep(d: Doc) -> bool:
            return (d["agent_id"] == agent_id and text in d["search"]
                    and (not search.results or d["result"] in search.results)
                    and search.modality in (None, d["data"]["modality"])
                    and (since is None or int(d["offered"]) >= since))

        docs = self.uow.overlay(SESSIONS, found, keep)
        docs.sort(key=lambda d: (-int(d["offered"]), str(d["data"]["id"])))
        return [self.load(d) for d in docs[offset:offset + limit]]

    async def connected_before(self, cutoff: datetime) -> list[Session]:
        limit = us(cutoff)
        docs = await self._select(
            "SELECT * FROM c WHERE c.phase = @phase AND c.connected < @cutoff",
            {"phase": Phase.CONNECTED.value, "cutoff": limit},
            lambda d: d["phase"] == Phase.CONNECTED.value and d["connected"] is not None
            and int(d["connected"]) < limit)
        docs.sort(key=lambda d: (int(d["connected"]), str(d["id"])))
        return [self.load(d) for d in docs]

    async def by_chat(self, chat_id: str) -> Session | None:
        """The chat's current session: a connected one first, else the latest."""
        meta = self.uow.container(META)
        pk = chat_pk(chat_id)
        live = await query_all(meta, "SELECT * FROM c WHERE c.pk = @pk AND c.live = true",
                               params(pk=pk), pk=pk)
        mine = [view for _, view in self.uow.pending_views(SESSIONS)
                if view is not None and view.get("chat_id") == chat_id]
        candidates = await gather_limited([self._loader(str(e["session_id"])) for e in live])
        valid = [d for d in [*candidates, *mine] if d is not None and d.get("chat_id") == chat_id]
        connected = [d for d in valid if d["phase"] == Phase.CONNECTED.value]
        if connected:
            return self.load(max(connected, key=_latest))
        latest = list(valid)
        entries = iter_query(meta, "SELECT * FROM c WHERE c.pk = @pk ORDER BY c.offered DESC",
                             params(pk=pk), pk=pk, page_size=10)
        async with contextlib.aclosing(entries):
            async for entry in entries:
                doc = await self._view(str(entry["session_id"]))
                if doc is not None and doc.get("chat_id") == chat_id:
                    latest.append(doc)
                    break
        return self.load(max(latest, key=_latest)) if latest else None

    def _loader(self, session_id: str) -> Callable[[], Any]:
        return lambda: self._view(session_id)

    async def by_card(self, card_id: str) -> Session | None:
        docs = await self._select("SELECT * FROM c WHERE c.card_id = @card", {"card": card_id},
                                  lambda d: d.get("card_id") == card_id)
        return self.load(max(docs, key=_latest)) if docs else None


def _latest(doc: Doc) -> tuple[int, str]:
    return (int(doc["offered"]), str(doc["id"]))


# -- timers ------------------------------------------------------------------------------------

def timer_doc(timer: Timer) -> Doc:
    ready = max(timer.due_at, timer.lease_until) if timer.lease_until else timer.due_at
    return {"id": sid(timer.id), "pk": TIMER_PARTITION, "kind": timer.kind, "ref": timer.ref,
            "due": us(timer.due_at), "ready": us(ready), "due_at": timer.due_at.isoformat(),
            "lease_until": timer.lease_until.isoformat() if timer.lease_until else None,
            "attempts": timer.attempts, "data": encode(timer.data), "version": timer.version}


def timer_from(doc: Doc) -> Timer:
    lease = doc.get("lease_until")
    return Timer(kind=doc["kind"], ref=doc["ref"], due_at=datetime.fromisoformat(doc["due_at"]),
                 lease_until=datetime.fromisoformat(lease) if lease else None,
                 attempts=int(doc["attempts"]), data=dict(doc["data"]),
                 version=int(doc["version"]))


class CosmosTimers(_Repo):
    """All timers live in one partition: a small, short-lived set the scheduler scans often."""

    async def _state_view(self, timer_id: str) -> Doc | None:
        return (await self.uow.state(TIMERS, TIMER_PARTITION, sid(timer_id))).view

    async def get(self, timer_id: str) -> Timer | None:
        view = await self._state_view(timer_id)
        return timer_from(view) if view is not None else None

    async def arm(self, timer: Timer, *, now: datetime | None = None) -> None:
        current = await self._state_view(timer.id)
        asked = timer.lease_until if now is not None else None

        def build(cur: Doc | None) -> Doc:
            # A lease held by a running job stays (see the port); attempts start again.
            held = timer_from(cur).lease_until if cur is not None else None
            free = now is not None and (held is None or held <= now)
            lease, attempts = (asked, 1) if asked is not None and free else (held, 0)
            armed = Timer(kind=timer.kind, ref=timer.ref, due_at=timer.due_at,
                          lease_until=lease, attempts=attempts, data=dict(timer.data),
                          version=int(cur["version"]) + 1 if cur is not None else 1)
            # What the write did (built again at the flush, on what is there then).
            timer.lease_until = asked if attempts == 1 else None
            timer.attempts, timer.version = attempts, armed.version
            return timer_doc(armed)

        self.uow.buffer(DocWrite(TIMERS, TIMER_PARTITION, sid(timer.id), build=build),
                        build(current))

    async def cancel(self, timer_id: str) -> None:
        await self._state_view(timer_id)
        self.uow.buffer(DocWrite(TIMERS, TIMER_PARTITION, sid(timer_id), build=lambda _: None),
                        None)

    async def _check(self, timer: Timer, what: str) -> None:
        view = await self._state_view(timer.id)
        if view is None or int(view["version"]) != timer.version:
            raise ConflictError(f"timer {timer.id} {what}")

    async def save(self, timer: Timer) -> None:
        await self._check(timer, "changed since it was read")
        timer.version += 1
        doc = timer_doc(timer)
        self.uow.buffer(DocWrite(TIMERS, TIMER_PARTITION, sid(timer.id), new=doc), doc)

    async def delete(self, timer: Timer) -> None:
        await self._check(timer, "changed or fired elsewhere")
        self.uow.buffer(DocWrite(TIMERS, TIMER_PARTITION, sid(timer.id), new=None), None)

    async def due(self, now: datetime, limit: int, kinds: Sequence[str]) -> list[Timer]:
        kinds = list(kinds)
        if limit <= 0 or not kinds:
            return []
        moment = us(now)
        want = limit + sum(1 for _ in self.uow.pending_views(TIMERS))
        found = await query_all(
            self.uow.container(TIMERS),
            "SELECT TOP @n * FROM c WHERE c.pk = @pk AND c.ready <= @now"
            " AND ARRAY_CONTAINS(@kinds, c.kind) ORDER BY c.due",
            params(n=want, pk=TIMER_PARTITION, now=moment, kinds=kinds), pk=TIMER_PARTITION)
        docs = self.uow.overlay(TIMERS, found,
                                lambda d: int(d["ready"]) <= moment and d["kind"] in kinds)
        docs.sort(key=lambda d: (int(d["due"]), str(d["id"])))
        return [timer_from(d) for d in docs[:limit]]

    async def next_due_at(self, kinds: Sequence[str]) -> datetime | None:
        kinds = list(kinds)
        if not kinds:
            return None
        want = 1 + sum(1 for _ in self.uow.pending_views(TIMERS))
        found = await query_all(
            self.uow.container(TIMERS),
            "SELECT TOP @n * FROM c WHERE c.pk = @pk AND ARRAY_CONTAINS(@kinds, c.kind)"
            " ORDER BY c.ready", params(n=want, pk=TIMER_PARTITION, kinds=kinds),
            pk=TIMER_PARTITION)
        docs = self.uow.overlay(TIMERS, found, lambda d: d["kind"] in kinds)
        return from_us(min(int(d["ready"]) for d in docs)) if docs else None


# -- events ------------------------------------------------------------------------------------

def event_pk(event: Event) -> str:
    if event.task_id:
        return sid(event.task_id)
    if event.agent_id:
        return f"agent|{event.agent_id}"
    return "system"


async def bump(uow: UnitOfWorkCore, pk: str, item_id: str, by: int) -> int:
    """Add to a counter in meta atomically (a patch `incr`, no read-modify-write race)."""
    meta = uow.container(META)
    for _ in range(uow.options_write_retries):
        try:
            doc = await meta.patch_item(item_id, partition_key=pk, patch_operations=[
                {"op": "incr", "path": "/value", "value": by}])
            return int(doc["value"])
        except cosmos_errors.CosmosResourceNotFoundError:
            pass
        except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
            raise unavailable(exc) from exc
        try:
            await meta.create_item({"id": item_id, "pk": pk, "kind": "counter", "value": by})
            return by
        except cosmos_errors.CosmosResourceExistsError:
            continue  # created meanwhile: increment it
        except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
            raise unavailable(exc) from exc
    raise ConflictError(f"counter {item_id} could not be created")


class CosmosEvents(_Repo):
    """Events of a task share its partition; `seq` comes from one counter in meta.

    A commit takes a block of numbers for its events with one atomic increment after its state
    writes succeeded, then writes them. A reader may see a later number before an earlier one is
    written; `after` stops at such a gap until it is `gap_grace` seconds old (a writer that died
    between taking numbers and writing them), so a reader never skips an event that is coming.
    """

    def __init__(self, uow: UnitOfWorkCore, ttl: TtlPolicy | None, gap_grace: float) -> None:
        super().__init__(uow, ttl)
        self.gap_grace = gap_grace
        self.pending: list[Event] = []

    async def append(self, event: Event) -> None:
        if not self.pending:
            self.uow.finals.append(self._flush)
        self.pending.append(event)

    def _doc(self, event: Event) -> Doc:
        doc: Doc = {"id": str(event.seq), "pk": event_pk(event), "seq": event.seq,
                    "at": event.at.isoformat(), "name": event.name, "task_id": event.task_id,
                    "session_id": event.session_id, "agent_id": event.agent_id,
                    "service_id": event.service_id, "data": encode(event.data)}
        return self._with_ttl(EVENTS, event, doc)

    async def _flush(self) -> None:
        events, self.pending = self.pending, []
        if not events:
            return
        top = await bump(self.uow, *EVENT_SEQ, len(events))
        container = self.uow.container(EVENTS)
        by_partition: dict[str, list[Doc]] = {}
        for offset, event in enumerate(events):
            event.seq = top - len(events) + 1 + offset
            doc = self._doc(event)
            by_partition.setdefault(doc["pk"], []).append(doc)
        for pk, docs in by_partition.items():
            try:
                if len(docs) == 1 or len(docs) > MAX_BATCH:
                    for doc in docs:
                        await container.create_item(doc)
                else:  # a task's events of one commit appear together, in one request
                    await container.execute_item_batch(
                        batch_operations=[("create", (doc,)) for doc in docs], partition_key=pk)
            except (cosmos_errors.CosmosBatchOperationError, cosmos_errors.CosmosHttpResponseError,
                    AzureError) as exc:
                raise unavailable(exc) from exc

    @staticmethod
    def _event(doc: Doc) -> Event:
        return Event(name=doc["name"], at=datetime.fromisoformat(doc["at"]),
                     task_id=doc.get("task_id"), session_id=doc.get("session_id"),
                     agent_id=doc.get("agent_id"), service_id=doc.get("service_id"),
                     data=dict(doc.get("data") or {}), seq=int(doc["seq"]))

    async def after(self, seq: int, limit: int) -> list[Event]:
        counter = await read_item(self.uow.container(META), *EVENT_SEQ)
        top = int(counter["value"]) if counter else 0
        out: list[Event] = []
        expected = seq + 1
        low = seq
        window = max(limit, 100)
        settled_before = time.time() - self.gap_grace
        while low < top and len(out) < limit:
            high = min(top, low + window)
            docs = await query_all(
                self.uow.container(EVENTS),
                "SELECT * FROM c WHERE c.seq > @low AND c.seq <= @high",
                params(low=low, high=high))
            for doc in sorted(docs, key=lambda d: int(d["seq"])):
                number = int(doc["seq"])
                if number > expected and float(doc.get("_ts", 0)) > settled_before:
                    return out  # an earlier event may still be on its way
                out.append(self._event(doc))
                expected = number + 1
                if len(out) == limit:
                    return out
            low = high
        return out

    async def export(self, where: EventFilter, after: int, limit: int,
                     scan: int) -> Scan[Event, int]:
        """Windows of sequence numbers, up to `scan` of them: the numbers present (to stop at
        a fresh gap, as `after` does), then the documents matching the filters in the query;
        the time filters apply here (`at` is text in the documents)."""
        counter = await read_item(self.uow.container(META), *EVENT_SEQ)
        top = int(counter["value"]) if counter else 0
        end = min(top, after + scan)
        found: list[Event] = []
        low = after
        settled_before = time.time() - self.gap_grace
        filters = ""
        values: dict[str, Any] = {}
        for name, value in (("service_id", where.service_id), ("agent_id", where.agent_id),
                            ("name", where.name)):
            if value is not None:
                filters += f" AND c.{name} = @{name}"
                values[name] = value
        if where.services is not None:
            filters += " AND ARRAY_CONTAINS(@services, c.service_id)"
            values["services"] = sorted(where.services)
        container = self.uow.container(EVENTS)
        while low < end:
            high = min(end, low + max(limit, 500))
            present = await query_all(
                container, "SELECT c.seq, c._ts FROM c WHERE c.seq > @low AND c.seq <= @high",
                params(low=low, high=high))
            expected, fresh_gap = low + 1, False
            for doc in sorted(present, key=lambda d: int(d["seq"])):
                if int(doc["seq"]) > expected and float(doc.get("_ts", 0)) > settled_before:
                    high, fresh_gap = expected - 1, True  # an earlier event may be on its way
                    break
                expected = int(doc["seq"]) + 1
            docs = await query_all(
                container, "SELECT * FROM c WHERE c.seq > @low AND c.seq <= @high" + filters,
                params(low=low, high=high, **values)) if high > low else []
            for doc in sorted(docs, key=lambda d: int(d["seq"])):
                event = self._event(doc)
                if ((where.since is None or event.at >= where.since)
                        and (where.until is None or event.at < where.until)):
                    found.append(event)
                    if len(found) == limit:
                        return Scan(found, event.seq)
            low = high
            if fresh_gap:
                break
        return Scan(found, low if after < low < top else None)

    async def for_task(self, task_id: str) -> list[Event]:
        pk = sid(task_id)
        docs = await query_all(self.uow.container(EVENTS), "SELECT * FROM c WHERE c.pk = @pk",
                               params(pk=pk), pk=pk)
        found = [self._event(d) for d in sorted(docs, key=lambda d: int(d["seq"]))
                 if d.get("task_id") == task_id]
        return found + [e for e in self.pending if e.task_id == task_id]


# -- messages ----------------------------------------------------------------------------------

class CosmosMessages(_Repo):
    """A task's messages share its partition; the item id is the sequence number, so two writers
    can never both take one number: the loser gets 409 and takes the next."""

    def __init__(self, uow: UnitOfWorkCore, ttl: TtlPolicy | None) -> None:
        super().__init__(uow, ttl)
        self.pending: list[ChatMessage] = []
        self.next_seq: dict[str, int] = {}

    def _doc(self, message: ChatMessage) -> Doc:
        doc: Doc = {"id": str(message.seq), "pk": sid(message.task_id), "kind": "message",
                    "task_id": message.task_id, "seq": message.seq, "data": encode(message)}
        return self._with_ttl(MESSAGES, message, doc)

    async def append(self, message: ChatMessage) -> None:
        task_id = message.task_id
        if task_id not in self.next_seq:
            self.next_seq[task_id] = await self.uow.max_message_seq(task_id) + 1
        message.seq = self.next_seq[task_id]
        self.next_seq[task_id] += 1
        self.pending.append(message)
        self.uow.buffer_message(MessageWrite(message, sid(task_id), self._doc))

    def committed(self) -> None:
        self.pending = []
        self.next_seq = {}

    async def after(self, task_id: str, seq: int, limit: int) -> list[ChatMessage]:
        pk = sid(task_id)
        docs = await query_all(
            self.uow.container(MESSAGES),
            "SELECT TOP @n * FROM c WHERE c.pk = @pk AND c.seq > @seq ORDER BY c.seq",
            params(n=limit, pk=pk, seq=seq), pk=pk)
        found: dict[int, ChatMessage] = {}
        for doc in docs:
            message = decode(ChatMessage, doc["data"])
            message.seq = int(doc["seq"])
            found[message.seq] = message
        for message in self.pending:
            if message.task_id == task_id and message.seq > seq:
                found[message.seq] = message
        return [found[n] for n in sorted(found)[:limit]]


# -- meta: counters and tags -------------------------------------------------------------------

class CosmosCounters(_Repo):
    async def next(self, name: str) -> int:
        return await bump(self.uow, f"counter|{name}", sid(name), 1)


class CosmosTags(_Repo):
    async def record(self, service_id: str, tags: Sequence[str], at: datetime) -> None:
        listed = list(tags)
        if listed:
            self.uow.finals.append(lambda: self._record(service_id, listed, at))

    async def _record(self, service_id: str, tags: list[str], at: datetime) -> None:
        meta = self.uow.container(META)
        pk = f"tags|{service_id}"
        for tag in tags:
            key = tag.lower()
            for _ in range(self.uow.options_write_retries):
                try:
                    await meta.patch_item(sid(key), partition_key=pk, patch_operations=[
                        {"op": "incr", "path": "/uses", "value": 1},
                        {"op": "set", "path": "/last_used", "value": us(at)}])
                    break
                except cosmos_errors.CosmosResourceNotFoundError:
                    pass
                except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
                    raise unavailable(exc) from exc
                try:
                    await meta.create_item({"id": sid(key), "pk": pk, "kind": "tag", "tag": tag,
                                            "tag_key": key, "uses": 1, "last_used": us(at)})
                    break
                except cosmos_errors.CosmosResourceExistsError:
                    continue
                except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
                    raise unavailable(exc) from exc

    async def suggest(self, service_id: str, text: str, limit: int) -> list[str]:
        key = text.lower()
        pk = f"tags|{service_id}"
        docs = await query_all(
            self.uow.container(META),
            "SELECT * FROM c WHERE c.pk = @pk AND CONTAINS(c.tag_key, @text)",
            params(pk=pk, text=key), pk=pk)
        docs.sort(key=lambda d: (not str(d["tag_key"]).startswith(key), -int(d["uses"]),
                                 -int(d["last_used"])))
        return [str(d["tag"]) for d in docs[:limit]]


# -- outbox: web requests waiting for delivery ----------------------------------------------

def outbox_pk(task_id: str) -> str:
    return f"outbox|{task_id}"


class CosmosOutbox(_Repo):
    """Entries `outbox|<task id>` in meta, one per pending delivery, `seq` in the item id.

    An append is a strict create of the next number of its task, buffered with the unit of work
    like any state write: two units of work that take the same number conflict (409) and the
    Engine re-runs the later one, so the order of a task's deliveries is the commit order.
    """

    def __init__(self, uow: UnitOfWorkCore, ttl: TtlPolicy | None) -> None:
        super().__init__(uow, ttl)
        self.next_seq: dict[str, int] = {}

    @staticmethod
    def item_id(task_id: str, seq: int) -> str:
        return sid(f"outbox|{task_id}|{seq}")

    def _doc(self, delivery: Delivery) -> Doc:
        return {"id": self.item_id(delivery.task_id, delivery.seq),
                "pk": outbox_pk(delivery.task_id), "kind": "outbox",
                "task_id": delivery.task_id, "seq": delivery.seq, "version": delivery.version,
                "data": encode(delivery)}

    @staticmethod
    def _delivery(doc: Doc) -> Delivery:
        delivery = decode(Delivery, doc["data"])
        delivery.seq, delivery.version = int(doc["seq"]), int(doc["version"])
        return delivery

    def _mine(self, task_id: str) -> list[Doc]:
        return [view for _, view in self.uow.pending_views(META)
                if view is not None and view.get("kind") == "outbox"
                and view.get("task_id") == task_id]

    async def append(self, delivery: Delivery) -> None:
        task_id = delivery.task_id
        if task_id not in self.next_seq:
            pk = outbox_pk(task_id)
            found = await query_all(
                self.uow.container(META),
                "SELECT VALUE MAX(c.seq) FROM c WHERE c.pk = @pk", params(pk=pk), pk=pk)
            stored = max((v for v in found if isinstance(v, int)), default=0)
            mine = max((int(d["seq"]) for d in self._mine(task_id)), default=0)
            self.next_seq[task_id] = max(stored, mine) + 1
        delivery.seq = self.next_seq[task_id]
        delivery.version = 1
        self.next_seq[task_id] += 1
        doc = self._doc(delivery)
        self.uow.buffer(DocWrite(META, doc["pk"], doc["id"], new=doc, expect_exists=False),
                        doc)

    async def pending(self, task_id: str, limit: int) -> list[Delivery]:
        pk = outbox_pk(task_id)
        found = await query_all(
            self.uow.container(META),
            "SELECT * FROM c WHERE c.pk = @pk AND c.kind = 'outbox' ORDER BY c.seq",
            params(pk=pk), pk=pk)
        docs = self.uow.overlay(META, found, lambda d: d.get("kind") == "outbox"
                                and d.get("task_id") == task_id)
        docs.sort(key=lambda d: int(d["seq"]))
        return [self._delivery(d) for d in docs[:limit]]

    async def _check(self, delivery: Delivery, what: str) -> str:
        item_id = self.item_id(delivery.task_id, delivery.seq)
        view = (await self.uow.state(META, outbox_pk(delivery.task_id), item_id)).view
        if view is None or int(view["version"]) != delivery.version:
            raise ConflictError(f"outbox {delivery.task_id}/{delivery.seq} {what}")
        return item_id

    async def save(self, delivery: Delivery) -> None:
        item_id = await self._check(delivery, "changed since it was read")
        delivery.version += 1
        doc = self._doc(delivery)
        self.uow.buffer(DocWrite(META, doc["pk"], item_id, new=doc), doc)

    async def delete(self, delivery: Delivery) -> None:
        item_id = await self._check(delivery, "changed or gone")
        self.uow.buffer(DocWrite(META, outbox_pk(delivery.task_id), item_id, new=None), None)

    def committed(self) -> None:
        self.next_seq = {}
