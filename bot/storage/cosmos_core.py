"""The Cosmos DB unit of work: it reads at once, buffers its writes and flushes them at commit,
one transactional batch per logical partition, in order (`cosmos_writes`), undoing what it
wrote when a later partition's write fails; basics shared by every module are in `cosmos_base`.

The design is explained in `bot.storage.cosmos`; this module is the part that is not about any one
repository.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.cosmos import exceptions as cosmos_errors
from azure.cosmos.aio import ContainerProxy

from bot.services.ports import ConflictError, StoreUnavailable
from bot.storage.cosmos_base import (
    MESSAGES,
    META,
    Doc,
    Key,
    clean,
    params,
    query_all,
    read_item,
    sid,
)
from bot.storage.cosmos_writes import (
    MAX_BATCH,
    DocState,
    DocWrite,
    Flush,
    MessageWrite,
    Undo,
    Write,
    apply_batch,
    coalesce,
    flush_groups,
    flush_order,
)

log = logging.getLogger(__name__)


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


async def gather_limited(calls: Sequence[Callable[[], Awaitable[Any]]],
                         width: int = 8) -> list[Any]:
    """Run awaitables a few at a time, keeping their order."""
    results: list[Any] = []
    for start in range(0, len(calls), width):
        results += await asyncio.gather(*(call() for call in calls[start:start + width]))
    return results
