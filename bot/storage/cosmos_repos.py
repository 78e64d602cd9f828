"""The repositories of the Cosmos DB store: one class per storage port.

Document layouts, partition keys and index entries are described in `bot.storage.cosmos`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.cosmos import exceptions as cosmos_errors

from bot.domain.agent import Agent, Availability
from bot.domain.customer import phone_key
from bot.domain.routing import idle_key, queue_key
from bot.domain.service import Modality
from bot.domain.session import Phase, Session
from bot.domain.task import Task, TaskState
from bot.services.ports import ConflictError, CustomerQuery, Scan, SessionFilter, SessionSearch
from bot.services.privacy import RETENTION
from bot.storage.codec import decode, encode
from bot.storage.codec import micros as us
from bot.storage.cosmos_base import (
    AGENTS,
    MESSAGES,
    META,
    SESSIONS,
    TASKS,
    Doc,
    iter_query,
    params,
    query_all,
    sid,
)
from bot.storage.cosmos_core import (
    UnitOfWorkCore,
    gather_limited,
)
from bot.storage.cosmos_indexes import (
    FINISHED,
    ORPHAN_GRACE,
    ChatIndex,
    Order,
    QueueIndex,
    chat_pk,
    is_queued,
    queue_pk,
    waiting_in,
)
from bot.storage.cosmos_writes import (
    DocWrite,
    Hooks,
)

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

LIVE = tuple(s.value for s in TaskState if not s.finished)
ROSTER = "agents"  # the one partition of the agents container
TIMER_PARTITION = "timers"  # the one partition of the timers container
EVENT_SEQ = ("seq|events", "events")  # (pk, id) in meta of the global event counter


class Repo:
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

class _Entities(Repo, Generic[E]):
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

    async def _matching(self, who: CustomerQuery, limit: int) -> list[E]:
        """The entities whose customer matches `who` (an erasure or access request)."""
        sql, values = _about(who)
        docs = [d for d in await self._select(
            sql, values, lambda d: customer_matches(who, d["data"].get("customer")))
            if customer_matches(who, d["data"].get("customer"))]
        return [self.load(d) for d in docs[:limit]]


def customer_matches(who: CustomerQuery, customer: Any) -> bool:
    """`who` against an encoded customer ({"name", "email", "phone", ...}), as the ports say."""
    if not isinstance(customer, dict):
        return False
    email, phone, name = who.email.strip().lower(), phone_key(who.phone), who.name.strip().lower()
    return bool((email and str(customer.get("email", "")).lower() == email)
                or (phone and phone_key(str(customer.get("phone", ""))) == phone)
                or (name and str(customer.get("name", "")).lower() == name))


def _about(who: CustomerQuery) -> tuple[str, dict[str, Any]]:
    """A cross-partition query for documents whose customer matches `who` (erasure and access
    requests are rare: no index is kept for them)."""
    clauses: list[str] = []
    values: dict[str, Any] = {}
    if who.email.strip():
        clauses.append("LOWER(c.data.customer.email) = @email")
        values["email"] = who.email.strip().lower()
    if phone_key(who.phone):
        # A coarse filter (numbers ending in the same digit); `customer_matches` decides.
        # REPLACE would do, but the stand-in's replaces only the first occurrence.
        clauses.append("ENDSWITH(c.data.customer.phone, @last)")
        values["last"] = phone_key(who.phone)[-1]
    if who.name.strip():
        clauses.append("LOWER(c.data.customer.name) = @name")
        values["name"] = who.name.strip().lower()
    return "SELECT * FROM c WHERE " + (" OR ".join(clauses) or "false"), values


def _slot(service_id: str, modality: Modality | str) -> str:
    return f"{service_id}|{Modality(modality).value}"


def _idle_order(agent: Agent) -> str:
    """`bot.domain.routing.idle_key` as one string that sorts as it does (a query orders by
    one field): never idle first, then oldest, then id."""
    rank, since, agent_id = idle_key(agent)
    if not isinstance(since, datetime):
        return f"{rank}|{agent_id}"
    return f"{rank}|{max(0, us(since)):020d}|{agent_id}"


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


class CosmosTasks(_Entities[Task]):
    container = TASKS
    cls = Task
    hooks: ClassVar[Hooks | None] = QueueIndex()

    def fields(self, entity: Task) -> Doc:
        return {"service_id": entity.service_id, "state": entity.state.value,
                "priority": entity.priority, "enq": us(entity.enqueued_at)}

    async def _waiting(self, service_id: str) -> dict[str, tuple[Order, Doc | None, bool]]:
        """Tasks waiting in a service per its queue entries and this unit of work's writes:
        their queue order, entry, and whether they may be queued (not known to ring)."""
        entries = await query_all(self.uow.container(META),
                                  "SELECT * FROM c WHERE c.pk = @pk",
                                  params(pk=queue_pk(service_id)), pk=queue_pk(service_id))
        found: dict[str, tuple[Order, Doc | None, bool]] = {
            str(e["task_id"]): (queue_key(int(e["priority"]), int(e["enq"]),
                                             str(e["task_id"])), e, bool(e.get("q", True)))
            for e in entries}
        for _, view in self.uow.pending_views(TASKS):
            if view is None:
                continue
            task_id = str(view["data"]["id"])
            if waiting_in(view, service_id):
                entry = found.get(task_id, (None, None, True))[1]
                found[task_id] = (queue_key(int(view["priority"]), int(view["enq"]),
                                               task_id), entry, is_queued(view))
            else:
                found.pop(task_id, None)
        return found

    async def queued(self, service_id: str, limit: int) -> list[Task]:
        waiting = await self._waiting(service_id)
        order = sorted(((task_id, entry) for task_id, (_, entry, maybe) in waiting.items()
                        if maybe), key=lambda item: waiting[item[0]][0])
        chosen: list[Doc] = []
        width = max(8, limit)
        for start in range(0, len(order), width):
            chunk = order[start:start + width]
            docs = await gather_limited([self._loader(task_id) for task_id, _ in chunk])
            for (task_id, entry), doc in zip(chunk, docs, strict=True):
                if doc is not None and doc["state"] == TaskState.QUEUED.value \
                        and doc["service_id"] == service_id:
                    chosen.append(doc)
                elif entry is not None and not self._pending(task_id):
                    if doc is not None and doc["state"] == TaskState.RINGING.value:
                        await QueueIndex.ringing(self.uow, entry, int(doc["version"]))
                    else:
                        await self._tidy(entry, doc)
            if len(chosen) >= limit:
                break
        chosen.sort(key=lambda d: queue_key(int(d["priority"]), int(d["enq"]),
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
        mine = queue_key(task.priority, us(task.enqueued_at), task.id)
        return 1 + sum(1 for task_id, (order, _, _) in waiting.items()
                       if task_id != task.id and order < mine)

    async def live(self) -> list[Task]:
        docs = await self._select("SELECT * FROM c WHERE ARRAY_CONTAINS(@states, c.state)",
                                  {"states": list(LIVE)}, lambda d: d["state"] in LIVE)
        docs.sort(key=lambda d: (int(d["enq"]), str(d["id"])))
        return [self.load(d) for d in docs]

    async def about(self, who: CustomerQuery, limit: int) -> list[Task]:
        return await self._matching(who, limit)


class CosmosSessions(_Entities[Session]):
    container = SESSIONS
    cls = Session
    hooks: ClassVar[Hooks | None] = ChatIndex()

    def fields(self, entity: Session) -> Doc:
        return {"task_id": entity.task_id, "agent_id": entity.agent_id,
                "service_id": entity.service_id, "phase": entity.phase.value,
                "offered": us(entity.offered_at),
                "connected": us(entity.connected_at) if entity.connected_at else None,
                "chat_id": entity.chat_id, "card_id": entity.card_id,
                "search": entity.search_text(),
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

    async def about(self, who: CustomerQuery, limit: int) -> list[Session]:
        return await self._matching(who, limit)


def _latest(doc: Doc) -> tuple[int, str]:
    return (int(doc["offered"]), str(doc["id"]))
