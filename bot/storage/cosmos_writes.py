"""A Cosmos DB commit's writes: one item's conditional write, a chat message under its next
number, the undo log, and the order and transactional batches they are flushed in."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.cosmos import exceptions as cosmos_errors

from bot.services.ports import ConflictError
from bot.storage.cosmos_base import (
    MESSAGES,
    TIMERS,
    Doc,
    Key,
    is_conflict,
    read_item,
    translate,
    unavailable,
)

if TYPE_CHECKING:
    from bot.domain.message import ChatMessage
    from bot.storage.cosmos_core import UnitOfWorkCore

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
            if not is_conflict(exc) or not 0 <= index < len(owner):
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
