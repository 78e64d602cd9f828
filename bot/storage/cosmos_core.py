"""Machinery of the Cosmos DB store: ids, times, error mapping, and a unit of work that buffers
its writes and flushes them at commit, one transactional batch per logical partition, in order,
undoing what it wrote when a later partition's write fails.

The design is explained in `bot.storage.cosmos`; this module is the part that is not about any one
repository.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.cosmos import exceptions as cosmos_errors
from azure.cosmos.aio import ContainerProxy

from bot.services.ports import ConflictError, StoreUnavailable

if TYPE_CHECKING:
    from bot.domain.message import ChatMessage

log = logging.getLogger(__name__)

Doc = dict[str, Any]
Key = tuple[str, str]  # (container, item id)

AGENTS, TASKS, SESSIONS, EVENTS, TIMERS, MESSAGES, META = (
    "agents", "tasks", "sessions", "events", "timers", "messages", "meta")
CONTAINERS: tuple[str, ...] = (TASKS, AGENTS, SESSIONS, EVENTS, TIMERS, MESSAGES, META)
PARTITION_KEY_PATH = "/pk"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID_ESCAPES = str.maketrans({"%": "%25", "/": "%2F", "\\": "%5C", "?": "%3F", "#": "%23"})
_MAX_ID = 200


def sid(value: str) -> str:
    """A Cosmos DB item id for a domain id: `/ \\ ? #` are not allowed in ids, 255 chars at most."""
    escaped = value.translate(_ID_ESCAPES)
    if len(escaped) <= _MAX_ID and escaped.strip() == escaped and escaped:
        return escaped
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]
    return f"{escaped[:_MAX_ID - 40].strip()}~{digest}"


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def clean(doc: Doc) -> Doc:
    """The document without the system properties (`_etag`, `_ts`, `_rid`...)."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


# -- errors --------------------------------------------------------------------------------------

_CONFLICT_STATUS = (409, 412)


def unavailable(exc: BaseException) -> StoreUnavailable:
    status = getattr(exc, "status_code", None)
    return StoreUnavailable(f"Cosmos DB request failed ({status or type(exc).__name__}): {exc}")


def is_conflict(exc: cosmos_errors.CosmosHttpResponseError) -> bool:
    """412 (ETag changed), 409 (id taken), 404 (deleted meanwhile) on a conditional write."""
    return exc.status_code in (*_CONFLICT_STATUS, 404)


def translate(exc: BaseException, what: str) -> Exception:
    if isinstance(exc, cosmos_errors.CosmosHttpResponseError) and is_conflict(exc):
        return ConflictError(f"{what} changed since it was read ({exc.status_code})")
    return unavailable(exc)


# -- reads ---------------------------------------------------------------------------------------

async def read_item(container: ContainerProxy, pk: str, item_id: str) -> Doc | None:
    """A point read (1 RU); None when the item does not exist."""
    try:
        found: Doc = await container.read_item(item_id, partition_key=pk)
    except cosmos_errors.CosmosResourceNotFoundError:
        return None
    except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
        raise unavailable(exc) from exc
    return found


def params(**values: Any) -> list[dict[str, Any]]:
    return [{"name": f"@{name}", "value": value} for name, value in values.items()]


async def iter_query(container: ContainerProxy, sql: str, parameters: list[dict[str, Any]], *,
                     pk: str | None = None, page_size: int = 100) -> AsyncGenerator[Any, None]:
    """Run a query page by page (continuation tokens); single-partition when `pk` is given.

    A single-partition query must also say `c.pk = @pk` in its SQL: the partition key option
    routes the request, the filter keeps the query right whatever routes it.
    """
    options: dict[str, Any] = {"max_item_count": page_size}
    if pk is not None:  # without one, the async client queries across partitions
        options["partition_key"] = pk
    try:
        pages = container.query_items(sql, parameters=parameters, **options).by_page()
        async for page in pages:
            async for item in page:
                yield item
    except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
        raise unavailable(exc) from exc


async def query_all(container: ContainerProxy, sql: str, parameters: list[dict[str, Any]], *,
                    pk: str | None = None) -> list[Any]:
    return [item async for item in iter_query(container, sql, parameters, pk=pk)]


# -- unit of work machinery --------------------------------------------------------------------

@dataclass
class DocState:
    """What one unit of work knows of one item."""

    base: Doc | None  # as last read from (or written to) the database; None = absent
    etag: str | None
    view: Doc | None  # as this unit of work sees it, its buffered writes included
    pending: bool = False  # a buffered write touches it
    pk: str | None = None  # its partition key, when known (to read it again)


class Hooks(Protocol):
    """Index upkeep around a write: `before` runs ahead of the write, `after` once all committed."""

    async def before(self, uow: UnitOfWorkCore, cur: Doc | None, new: Doc | None) -> None: ...
    async def after(self, uow: UnitOfWorkCore, cur: Doc | None, new: Doc | None) -> None: ...


@dataclass
class Undo:
    container: str
    pk: str
    item_id: str
    before: Doc | None
    after_etag: str | None


@dataclass
class Flush:
    """What a commit carries from write to write: current items, the undo log, after-hooks."""

    current: dict[Key, tuple[Doc | None, str | None]]
    undo: list[Undo] = field(default_factory=list)
    after: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    message_floor: dict[str, int] = field(default_factory=dict)


class Write(Protocol):
    first: bool  # flushed ahead of the others

    @property
    def partition(self) -> tuple[str, str]: ...  # (container, partition key)

    async def apply(self, uow: UnitOfWorkCore, flush: Flush) -> None: ...


@dataclass
class DocWrite:
    """One buffered write of one item.

    Strict writes (entity add/save, timer save/delete) are conditional on the ETag of the item as
    this unit of work read it and fail with ConflictError otherwise. Forced writes (timer arm and
    cancel, index entries) have upsert/delete-if-present meaning: on a lost race they re-read and
    apply `build` to the fresh item, a bounded number of times.
    """

    container: str
    pk: str
    item_id: str
    new: Doc | None = None  # strict: the item to write, None = delete it
    build: Callable[[Doc | None], Doc | None] | None = None  # forced: current -> new
    expect_exists: bool = True  # strict: whether the item must exist (save) or not (add)
    hooks: Hooks | None = None
    undoable: bool = True
    first: bool = False  # flushed ahead of every other write (guards: lose before writing)

    @property
    def key(self) -> Key:
        return (self.container, self.item_id)

    @property
    def partition(self) -> tuple[str, str]:
        return (self.container, self.pk)

    @property
    def strict(self) -> bool:
        return self.build is None

    def next_state(self, cur: Doc | None) -> Doc | None:
        """What this write leaves of the item, given what is there (strict: as read)."""
        if self.build is None:
            if (cur is not None) != self.expect_exists:
                raise ConflictError(f"{self.container} {self.item_id} changed since read")
            return self.new
        return self.build(cur)

    async def apply(self, uow: UnitOfWorkCore, flush: Flush) -> None:
        container = uow.container(self.container)
        strict = self.build is None
        attempts = 1 if strict else uow.options_write_retries
        for _ in range(attempts):
            if self.key not in flush.current:
                found = await read_item(container, self.pk, self.item_id)
                flush.current[self.key] = (found, found.get("_etag") if found else None)
            cur, etag = flush.current[self.key]
            new = self.next_state(cur)
            if cur is None and new is None:
                return
            if self.hooks is not None:
                await self.hooks.before(uow, cur, new)
            try:
                if cur is None:
                    assert new is not None
                    written: Doc | None = await container.create_item(new)
                elif new is None:
                    await container.delete_item(self.item_id, partition_key=self.pk, etag=etag,
                                                match_condition=MatchConditions.IfNotModified)
                    written = None
                else:
                    written = await container.replace_item(
                        self.item_id, new, etag=etag,
                        match_condition=MatchConditions.IfNotModified)
            except cosmos_errors.CosmosHttpResponseError as exc:
                if not is_conflict(exc):
                    raise unavailable(exc) from exc
                if strict:
                    raise translate(exc, f"{self.container} {self.item_id}") from exc
                del flush.current[self.key]  # re-read and try again
                continue
            except AzureError as exc:
                raise unavailable(exc) from exc
            after_etag = written.get("_etag") if written is not None else None
            flush.current[self.key] = (written, after_etag)
            if self.undoable:
                flush.undo.append(Undo(self.container, self.pk, self.item_id, cur, after_etag))
            if self.hooks is not None:
                flush.after.append(functools.partial(self.hooks.after, uow, cur, new))
            return
        raise ConflictError(f"{self.container} {self.item_id} kept changing; gave up")


@dataclass
class MessageWrite:
    """A chat message: created under the next free sequence number of its task."""

    message: ChatMessage
    pk: str
    to_doc: Callable[[ChatMessage], Doc]
    first: bool = False

    @property
    def partition(self) -> tuple[str, str]:
        return (MESSAGES, self.pk)

    def number(self, flush: Flush) -> Doc:
        """The message's document under the next number free as far as this flush knows."""
        task_id = self.message.task_id
        self.message.seq = max(self.message.seq, flush.message_floor.get(task_id, 0) + 1)
        flush.message_floor[task_id] = self.message.seq
        return self.to_doc(self.message)

    async def apply(self, uow: UnitOfWorkCore, flush: Flush) -> None:
        container = uow.container(MESSAGES)
        task_id = self.message.task_id
        for _ in range(uow.options_write_retries):
            try:
                written = await container.create_item(self.number(flush))
            except cosmos_errors.CosmosResourceExistsError:
                flush.message_floor[task_id] = await uow.max_message_seq(task_id)
                continue
            except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
                raise unavailable(exc) from exc
            flush.undo.append(Undo(MESSAGES, self.pk, written["id"], None, written.get("_etag")))
            return
        raise ConflictError(f"messages of task {task_id} kept changing; gave up")


class StoreCore(Protocol):
    write_retries: int
    guard_locks: dict[str, asyncio.Lock]  # one per guard key, shared by the process's units

    def container(self, name: str) -> ContainerProxy: ...


class UnitOfWorkCore:
    """Identity map, what is known of each item read, and the writes waiting for commit.

    Reads go to the database at once. Writes are buffered in call order and flushed by `commit`:
    first the state writes (entities, timers, messages, index entries), in `flush_groups` order,
    each group one transactional batch (or a point write), every operation conditional; if one
    fails, the groups before it are undone (best effort, each undo conditional on the ETag this
    flush produced) and the error is raised, so a lost race leaves nothing behind. Then the
    after-steps that only follow a successful flush: index clean-up, events, tags.
    """

    def __init__(self, store: StoreCore) -> None:
        self.store = store
        self.docs: dict[Key, DocState] = {}
        self.objects: dict[Key, Any] = {}
        self.writes: list[Write] = []
        self.finals: list[Callable[[], Awaitable[None]]] = []
        # Index entries (meta) this unit of work wrote, as written, by (pk, id): their ETag
        # lets an after-step change them again without reading them first.
        self.index_items: dict[tuple[str, str], Doc] = {}
        self.held: list[asyncio.Lock] = []  # guard keys this unit of work holds in-process

    @property
    def options_write_retries(self) -> int:
        return self.store.write_retries

    def container(self, name: str) -> ContainerProxy:
        return self.store.container(name)

    # -- what is known ------------------------------------------------------------------------

    def remember(self, container: str, doc: Doc) -> DocState:
        """Note an item a read returned; an item already known keeps what was known first."""
        key = (container, str(doc["id"]))
        state = self.docs.get(key)
        if state is None:
            state = self.docs[key] = DocState(doc, doc.get("_etag"), doc, pk=doc.get("pk"))
        return state

    def adds(self, entity_id: str, *containers: str) -> bool:
        """Whether this unit of work creates an item of that id in one of the containers
        (known absent when read, or never read, and written)."""
        for name in containers:
            state = self.docs.get((name, sid(entity_id)))
            if state is not None and state.pending and state.base is None:
                return True
        return False

    async def state(self, container: str, pk: str, item_id: str) -> DocState:
        key = (container, item_id)
        state = self.docs.get(key)
        if state is None:
            found = await read_item(self.container(container), pk, item_id)
            state = self.docs[key] = DocState(found, found.get("_etag") if found else None,
                                              found, pk=pk)
        return state

    async def reads_changed(self) -> bool:
        """Whether an item this unit of work read has changed since, appeared or gone.

        Reads are not one snapshot: a use case may see one item before and another after some
        other instance's commit, and refuse on that mix. Only then is this asked (it costs a
        point read per item known), so the refusal turns into a conflict and a fresh retry."""
        known = [(name, state) for (name, _), state in self.docs.items() if state.pk is not None]

        def reread(name: str, state: DocState) -> Callable[[], Awaitable[bool]]:
            async def changed() -> bool:
                assert state.pk is not None
                item_id = str((state.base or state.view or {}).get("id", ""))
                if not item_id:
                    return False
                found = await read_item(self.container(name), state.pk, item_id)
                return (found.get("_etag") if found else None) != state.etag
            return changed

        return any(await gather_limited([reread(name, state) for name, state in known]))

    async def guard(self, key: str) -> None:
        """Make this unit of work conflict with any other one that guards the same key.

        Cosmos DB checks what a commit writes, never what it read, so two units of work that
        each decide on the other's old state both commit (write skew: each finds nothing to
        offer while the other frees an agent or queues a task). A strict write of one small item
        per key makes such decisions conflict; the loser runs again on fresh state."""
        pk = f"guard|{key}"
        item_id = sid(key)
        await self._hold(key)
        state = await self.state(META, pk, item_id)
        if state.pending:
            return
        turn = int((state.view or {}).get("turn", 0)) + 1
        doc: Doc = {"id": item_id, "pk": pk, "kind": "guard", "turn": turn}
        self.buffer(DocWrite(META, pk, item_id, new=doc, expect_exists=state.base is not None,
                             undoable=False, first=True), doc)

    async def _hold(self, key: str) -> None:
        """Units of work of one process that guard one key take turns (until each ends) rather
        than lose the guard's race to each other and run again: only other instances' units
        of work still race for it. A unit of work waits only for its first key; a further one
        that is taken is a conflict (it lets go and runs again), so none waits in a cycle."""
        lock = self.store.guard_locks.setdefault(key, asyncio.Lock())
        if lock in self.held:
            return
        if self.held and lock.locked():
            raise ConflictError(f"guard {key} is held by another unit of work here")
        await lock.acquire()
        self.held.append(lock)

    def release(self) -> None:
        """Let go of the guards this unit of work holds in-process (it has ended)."""
        held, self.held = self.held, []
        for lock in reversed(held):
            lock.release()

    def pending_views(self, container: str) -> Iterable[tuple[str, Doc | None]]:
        """Items of a container this unit of work wrote: (id, item as it will be or None)."""
        for (name, item_id), state in self.docs.items():
            if name == container and state.pending:
                yield item_id, state.view

    def overlay(self, container: str, found: Iterable[Doc],
                keep: Callable[[Doc], bool]) -> list[Doc]:
        """Query results as this unit of work sees them: its own pending writes win.

        Items it wrote are judged by what it wrote (dropped if that no longer matches, added if
        it now does); others by what the database answered, as SQLite would inside a transaction.
        """
        result: dict[str, Doc] = {}
        for doc in found:
            self.remember(container, doc)
            result[str(doc["id"])] = doc
        for item_id, view in self.pending_views(container):
            result.pop(item_id, None)
            if view is not None and keep(view):
                result[item_id] = view
        return list(result.values())

    # -- buffering ------------------------------------------------------------------------------

    def buffer(self, write: DocWrite, view: Doc | None) -> None:
        key = write.key
        state = self.docs.get(key)
        if state is None:  # an add of an item never read: taken to be absent until commit
            state = self.docs[key] = DocState(None, None, None)
        state.view = view
        state.pending = True
        self.writes.append(write)

    def buffer_message(self, write: MessageWrite) -> None:
        self.writes.append(write)

    async def max_message_seq(self, task_id: str) -> int:
        found = await query_all(
            self.container(MESSAGES),
            "SELECT VALUE MAX(c.seq) FROM c WHERE c.pk = @pk", params(pk=sid(task_id)),
            pk=sid(task_id))
        values = [v for v in found if isinstance(v, int)]
        return max(values, default=0)

    # -- commit ---------------------------------------------------------------------------------

    async def commit(self) -> None:
        writes, self.writes = flush_order(self.writes), []
        finals, self.finals = self.finals, []
        flush = Flush(current={key: (state.base, state.etag) for key, state in self.docs.items()
                               if state.pending})
        try:
            for group in flush_groups(writes):
                if len(group) == 1 or len(group) > MAX_BATCH:
                    for write in group:
                        await write.apply(self, flush)
                else:
                    await apply_batch(self, flush, group)
        except BaseException:
            await self._undo(flush.undo)
            raise
        self.release()  # every state write is visible: the next one here may decide on them
        for key, (doc, etag) in flush.current.items():
            state = self.docs.get(key)
            if state is not None:
                state.base, state.etag, state.pending = doc, etag, False
        for step in flush.after:
            try:
                await step()
            except (ConflictError, StoreUnavailable) as exc:  # indexes tolerate a missed step
                log.warning("index upkeep skipped", extra={"error": str(exc)})
        problems: list[Exception] = []
        for final in finals:
            try:
                await final()
            except (ConflictError, StoreUnavailable) as exc:
                problems.append(exc)
        if problems:
            raise StoreUnavailable(
                "committed, but could not record: " + "; ".join(str(p) for p in problems))

    async def _undo(self, undo: Sequence[Undo]) -> None:
        for step in reversed(coalesce(undo)):
            container = self.container(step.container)
            try:
                if step.before is None and step.after_etag is None:
                    continue  # created and deleted again by this flush: nothing to take back
                if step.before is None:
                    await container.delete_item(step.item_id, partition_key=step.pk,
                                                etag=step.after_etag,
                                                match_condition=MatchConditions.IfNotModified)
                elif step.after_etag is None:
                    await container.create_item(clean(step.before))
                else:
                    await container.replace_item(step.item_id, clean(step.before),
                                                 etag=step.after_etag,
                                                 match_condition=MatchConditions.IfNotModified)
            except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
                # Someone changed it since: their write stands, ours cannot be taken back.
                log.warning("undo skipped", extra={"container": step.container,
                                                   "error": type(exc).__name__})


def flush_order(writes: Sequence[Write]) -> list[Write]:
    """The order a commit writes in. Guards first: a commit that loses on one has written
    nothing another instance could see. Then the items that existed (replaced or deleted on
    their ETag: the writes that can lose a race), then new items and upserts. A commit that
    loses a race has then not yet shown another instance a new item it could act on — and
    whose undo would be refused once that instance had changed it (the two-instance invariant
    machine found a ringing session left behind that way). Writes to one item keep their
    order, at the place of the first."""
    rank = _ranks(writes)
    return sorted(writes, key=lambda write: rank[_group(write)])


MAX_BATCH = 100  # operations in one transactional batch (a Cosmos DB limit)


def flush_groups(writes: Sequence[Write]) -> list[list[Write]]:
    """A commit's writes (in `flush_order`) as the groups it sends, in order: one group per
    logical partition and step of `flush_order` (guards, writes that can lose, new items and
    upserts), at the place of its first write; but the timers' upserts go after every other
    new item, so no instance finds a timer (a job due now) before the item it acts on. A group
    of two or more writes is one transactional batch (all or nothing); a partition with writes
    in two steps is two batches, so the steps keep their order across the whole commit."""
    rank = _ranks(writes)
    groups: dict[tuple[int, str, str], list[Write]] = {}
    for write in writes:
        groups.setdefault((rank[_group(write)], *write.partition), []).append(write)
    def order(key: tuple[int, str, str]) -> tuple[int, bool]:
        step, container, _ = key
        return (step, step == 2 and container == TIMERS)

    return [groups[key] for key in sorted(groups, key=order)]


def _ranks(writes: Sequence[Write]) -> dict[object, int]:
    rank: dict[object, int] = {}
    for write in writes:
        group = _group(write)
        if group not in rank:
            rank[group] = 0 if write.first else 1 if _can_lose(write) else 2
    return rank


@dataclass
class _Chain:
    """The writes of one batch to one item, folded into the one operation that ends where they
    end, conditional on the item as the flush found it."""

    key: Key
    writes: list[DocWrite] = field(default_factory=list)
    message: MessageWrite | None = None
    start: Doc | None = None
    etag: str | None = None
    steps: list[tuple[DocWrite, Doc | None, Doc | None]] = field(default_factory=list)
    ops: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    @property
    def strict(self) -> bool:
        return any(write.strict for write in self.writes)


def _chains(group: Sequence[Write]) -> list[_Chain]:
    chains: dict[object, _Chain] = {}
    for write in group:
        if isinstance(write, DocWrite):
            chain = chains.setdefault(write.key, _Chain(write.key))
            chain.writes.append(write)
        elif isinstance(write, MessageWrite):
            chains[id(write)] = _Chain((MESSAGES, ""), message=write)
    return list(chains.values())


async def _plan(uow: UnitOfWorkCore, flush: Flush, chains: list[_Chain]) -> None:
    """Each chain's operations, on what the flush knows of its item (read if unknown); index
    entries its writes need go in first (`Hooks.before`, safe to repeat)."""
    for chain in chains:
        chain.steps, chain.ops = [], []
        if chain.message is not None:
            doc = chain.message.number(flush)
            chain.key = (MESSAGES, str(doc["id"]))
            chain.ops.append(("create", (doc,), {}))
            continue
        first = chain.writes[0]
        if chain.key not in flush.current:
            found = await read_item(uow.container(first.container), first.pk, first.item_id)
            flush.current[chain.key] = (found, found.get("_etag") if found else None)
        chain.start, chain.etag = flush.current[chain.key]
        cur = chain.start
        for write in chain.writes:
            new = write.next_state(cur)
            if cur is None and new is None:
                continue
            if write.hooks is not None:
                await write.hooks.before(uow, cur, new)
            chain.steps.append((write, cur, new))
            cur = new
        condition = {"if_match_etag": chain.etag} if chain.etag else {}
        if chain.start is None and cur is not None:
            chain.ops.append(("create", (cur,), {}))
        elif chain.start is not None and cur is not None:
            chain.ops.append(("replace", (first.item_id, cur), condition))
        elif chain.start is not None:
            chain.ops.append(("delete", (first.item_id,), condition))
        elif chain.strict and chain.steps:
            # Added and deleted again: the create still checks that the id was free.
            added = chain.steps[0][2]
            chain.ops += [("create", (added,), {}), ("delete", (first.item_id,), {})]


async def apply_batch(uow: UnitOfWorkCore, flush: Flush, group: Sequence[Write]) -> None:
    """Write one partition's share of a commit as one transactional batch: all or nothing.

    An operation that finds its item changed (409, 412, 404) fails the batch: a strict write's
    chain makes it a ConflictError; an upsert-like chain (timer arm/cancel) reads its item again
    and a message takes the next free number, and the batch is tried again (bounded)."""
    name, pk = group[0].partition
    container = uow.container(name)
    chains = _chains(group)
    # Each try numbers the messages afresh (no gaps from a try that failed).
    floors = dict(flush.message_floor)
    numbers = [(c.message.message, c.message.message.seq) for c in chains if c.message]
    for _ in range(uow.options_write_retries):
        flush.message_floor = dict(floors)
        for message, seq in numbers:
            message.seq = seq
        await _plan(uow, flush, chains)
        ops = [op for chain in chains for op in chain.ops]
        owner = [chain for chain in chains for _ in chain.ops]
        if not ops:
            return
        try:
            results = await container.execute_item_batch(batch_operations=ops, partition_key=pk)
        except cosmos_errors.CosmosBatchOperationError as exc:
            index = exc.error_index if isinstance(exc.error_index, int) else -1
            if exc.status_code not in (*_CONFLICT_STATUS, 404) or not 0 <= index < len(owner):
                raise unavailable(exc) from exc
            lost = owner[index]
            if lost.message is not None:
                task_id = lost.message.message.task_id
                floors[task_id] = await uow.max_message_seq(task_id)
            elif lost.strict:
                raise ConflictError(
                    f"{name} {lost.key[1]} changed since it was read ({exc.status_code})") from exc
            else:
                del flush.current[lost.key]  # re-read and build again
            continue
        except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
            raise unavailable(exc) from exc
        _record(uow, flush, chains, list(results), pk)
        return
    raise ConflictError(f"{name} partition {pk} kept changing; gave up")


def _record(uow: UnitOfWorkCore, flush: Flush, chains: list[_Chain], results: list[Doc],
            pk: str) -> None:
    """What a batch wrote: the flush's current items, the undo log, the after-hooks."""
    at = 0
    for chain in chains:
        last = results[at + len(chain.ops) - 1] if chain.ops else None
        at += len(chain.ops)
        if last is None:
            continue
        written: Doc | None = last.get("resourceBody") if chain.ops[-1][0] != "delete" else None
        etag = written.get("_etag") if written is not None else None
        if chain.message is not None:
            flush.undo.append(Undo(MESSAGES, pk, chain.key[1], None, etag))
            continue
        flush.current[chain.key] = (written, etag)
        if any(write.undoable for write in chain.writes):
            flush.undo.append(Undo(chain.key[0], pk, chain.key[1], chain.start, etag))
        for write, cur, new in chain.steps:
            if write.hooks is not None:
                flush.after.append(functools.partial(write.hooks.after, uow, cur, new))


def _group(write: Write) -> object:
    return write.key if isinstance(write, DocWrite) else id(write)


def _can_lose(write: Write) -> bool:
    return isinstance(write, DocWrite) and write.build is None and write.expect_exists


def coalesce(undo: Sequence[Undo]) -> list[Undo]:
    """One undo per item, in the order of first writes: back to what was there before the first
    write, conditional on the ETag of the last (an item written twice is restored whole)."""
    steps: dict[Key, Undo] = {}
    for step in undo:
        key = (step.container, step.item_id)
        first = steps.get(key)
        steps[key] = step if first is None else Undo(
            first.container, first.pk, first.item_id, first.before, step.after_etag)
    return list(steps.values())


async def gather_limited(calls: Sequence[Callable[[], Awaitable[Any]]],
                         width: int = 8) -> list[Any]:
    """Run awaitables a few at a time, keeping their order."""
    results: list[Any] = []
    for start in range(0, len(calls), width):
        results += await asyncio.gather(*(call() for call in calls[start:start + width]))
    return results

