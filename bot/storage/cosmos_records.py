"""The Cosmos DB repositories of records: timers, events, chat messages, counters, tags and
the webhook outbox (document layouts in `bot.storage.cosmos`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError
from azure.cosmos import exceptions as cosmos_errors

from bot.domain.events import Event
from bot.domain.message import ChatMessage, Kind, Sender
from bot.domain.timers import Timer
from bot.domain.webhooks.model import Delivery
from bot.services.ports import ConflictError, EventFilter, Scan
from bot.storage.codec import decode, encode
from bot.storage.codec import micros as us
from bot.storage.cosmos_base import (
    EVENTS,
    MESSAGES,
    META,
    SESSIONS,
    TASKS,
    TIMERS,
    Doc,
    from_us,
    params,
    query_all,
    read_item,
    sid,
    unavailable,
)
from bot.storage.cosmos_core import (
    UnitOfWorkCore,
)
from bot.storage.cosmos_repos import EVENT_SEQ, TIMER_PARTITION, Repo, TtlPolicy
from bot.storage.cosmos_writes import (
    MAX_BATCH,
    DocWrite,
    MessageWrite,
)

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


class CosmosTimers(Repo):
    """All timers live in one partition: a small, short-lived set the scheduler scans often."""

    async def _state_view(self, timer_id: str) -> Doc | None:
        return (await self.uow.state(TIMERS, TIMER_PARTITION, sid(timer_id))).view

    async def get(self, timer_id: str) -> Timer | None:
        view = await self._state_view(timer_id)
        return timer_from(view) if view is not None else None

    async def arm(self, timer: Timer, *, now: datetime | None = None) -> None:
        # The timer of a task or session this unit of work adds cannot be there yet (their ids
        # are new): no read (were it there, the flush would find it and build on it).
        known = self.uow.docs.get((TIMERS, sid(timer.id)))
        current = (known.view if known is not None
                   else None if self.uow.adds(timer.ref, TASKS, SESSIONS)
                   else await self._state_view(timer.id))
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


class CosmosEvents(Repo):
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

class CosmosMessages(Repo):
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
            # A task this unit of work adds has no messages yet (were one there, the flush
            # would take the next free number).
            self.next_seq[task_id] = 1 if self.uow.adds(task_id, TASKS) else \
                await self.uow.max_message_seq(task_id) + 1
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

    async def last_seq(self, task_id: str) -> int:
        if task_id in self.next_seq:
            return self.next_seq[task_id] - 1
        return await self.uow.max_message_seq(task_id)

    async def sent_at(self, task_id: str, sender: Sender, limit: int) -> list[datetime]:
        pk = sid(task_id)
        docs = await query_all(
            self.uow.container(MESSAGES),
            "SELECT TOP @n c.seq, c.data.at FROM c WHERE c.pk = @pk AND c.kind = 'message'"
            " AND c.data.sender = @sender ORDER BY c.seq DESC",
            params(n=limit, pk=pk, sender=sender.value), pk=pk)
        found = {int(doc["seq"]): datetime.fromisoformat(doc["at"]) for doc in docs}
        for message in self.pending:
            if message.task_id == task_id and message.sender is sender:
                found[message.seq] = message.at
        return [found[n] for n in sorted(found, reverse=True)[:limit]]

    async def forget(self, task_id: str, after: int, before: int | None = None) -> int:
        """Each line goes in the task's transactional batch with the rest of the commit (a
        delete if present); the item TTL is the safety net should no instance ever run this."""
        pk = sid(task_id)
        found = await query_all(
            self.uow.container(MESSAGES),
            "SELECT * FROM c WHERE c.pk = @pk AND c.seq > @seq", params(pk=pk, seq=after), pk=pk)
        gone = [doc for doc in found if doc["data"].get("kind") == Kind.MESSAGE.value
                and (before is None or int(doc["seq"]) < before)]
        for doc in gone:
            self.uow.remember(MESSAGES, doc)  # the delete is conditional on what was read
            self.uow.buffer(DocWrite(MESSAGES, pk, str(doc["id"]), build=lambda _: None), None)
        return len(gone)


# -- meta: counters and tags -------------------------------------------------------------------

class CosmosCounters(Repo):
    async def next(self, name: str) -> int:
        return await bump(self.uow, f"counter|{name}", sid(name), 1)


class CosmosTags(Repo):
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


class CosmosOutbox(Repo):
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
