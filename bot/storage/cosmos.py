"""The Azure Cosmos DB store (``azure.cosmos.aio``): every storage port, for scale-out.

Any number of app instances share one database. Cosmos DB has transactions only within one
logical partition (a transactional batch), so every decision is a conditional write (ETag,
``IfNotModified``), a commit's writes to one partition go as one batch, and the partitioning
makes every operation of the hot paths a single-partition one:

- offer (dispatch): the ``queue|<service>`` index and the agent roster (two single-partition
  queries), point reads of the tasks, then point writes: the agent (the capacity guard), the new
  session, its timers, the task.
- accept: point reads of session and task, the task's conditional replace (the decision), then
  sessions, agents (one batch) and timers (batches), all conditional.
- relay: customer -> chatroom reads the task's ``messages`` partition and moves the session's
  cursor (point replace); chatroom -> customer finds the session through the ``chat|<chat id>``
  index (one partition) and appends to the task's ``messages`` partition.
- timer claim: the ``timers`` partition query, a point read, a conditional delete (handlers) or
  replace (job leases): the one instance whose write succeeds fires it.

Containers and partitioning
===========================
Seven containers, all partitioned on ``/pk`` with TTL on and no default (``defaultTtl -1``), and
with ``INDEXING_POLICY`` (everything but ``/data/*`` indexed); ``open_cosmos`` creates whatever
is missing that way, and the deploy templates must create them the same way. Every document
keeps the domain entity JSON-encoded (``bot.storage.codec``) under ``data``, its ``version`` at
top level, and the few fields queries filter on next to it. Times queries compare are integer
microseconds since the epoch (exact and sortable; ISO strings are neither across offsets). Item
ids are the domain ids, with ``% / \\ ? #`` percent-escaped (Cosmos DB forbids the last four).

============  =====================  =========================================================
container     pk                     documents
============  =====================  =========================================================
agents        ``"agents"``           one per agent (``registered``, ``services``). The roster is
                                     one logical partition: it is small (one 2-5 KB document per
                                     Teams user who installed the bot, far below the 20 GB of a
                                     logical partition) and ``available(service, modality)`` (the
                                     availability index kept in each agent's document) runs
                                     for every offer decision, so it stays a single-partition
                                     query; ``get``/``save`` are point operations.
tasks         task id                one per task (``service_id``, ``state``, ``priority``,
                                     ``enq``). Accept's deciding write (the task) is a point
                                     replace. ``live()`` is a cross-partition query (start-up and
                                     sweeps only).
sessions      session id             one per offer (``task_id``, ``agent_id``, ``phase``,
                                     ``offered``, ``connected``, ``chat_id``, ``card_id``,
                                     ``search``). Everything that acts on a session (card actions,
                                     ring timeout, relay cursor) has its id: point operations.
                                     ``for_task``, ``for_agent`` (My Sessions), ``connected_before``
                                     (stale sweep) and ``by_card`` (tag typeahead) are
                                     cross-partition queries, off the hot paths.
events        task id (else          ``id`` = ``seq``. ``for_task`` is single-partition;
              ``agent|<id>``, else   ``after(seq)`` (reporting) is a cross-partition range query
              ``system``)            on ``seq``.
timers        ``"timers"``           one per armed timer (``kind``, ``due``, ``ready`` = when it
                                     may fire: the later of due time and lease). Armed timers are
                                     few and short-lived (deleted when fired), so one partition
                                     holds them all and the scheduler's ``due()`` and
                                     ``next_due_at()``, run by every instance on every pass, are
                                     single-partition queries; claiming is a point read plus a
                                     conditional delete (handlers) or replace (effect leases).
                                     Ceiling: ~10k RU/s for one logical partition, far above a
                                     contact center's timer rate; past it, shard ``timers:<n>``
                                     by a hash of the id and scan the shards.
messages      task id                ``id`` = per-task ``seq``; relay reads are single-partition.
meta          see below              counters, tags and two indexes.
============  =====================  =========================================================

``meta`` partitions: ``counter|<name>`` (``Counters``, incremented with an atomic patch
``incr``), ``seq|events`` (the event sequence), ``tags|<service>`` (one document per tag: uses,
last use; ``suggest`` is single-partition), and two indexes that keep the offer and relay paths
single-partition:

- ``queue|<service>``: one entry per task *waiting* (queued or ringing) in the service, with its
  priority and enqueue time. ``tasks.queued(service)`` and ``position`` read this one partition,
  order by priority desc, enqueued, id, and point-read the tasks (checking each against the
  entry: the task document is the truth). An entry is written *before* the task write that
  starts the wait and removed *after* the committed write that ends it, and only if the entry is
  not newer than that write. So a waiting task always has an entry; an entry left by a write that
  lost its race is skipped, and dropped by a reader once its task has finished. An entry's hint
  ``q`` says whether its task may be queued: set before a write that makes it queued, cleared
  after a committed write made it ring (by that commit when it wrote the entry, else by the
  next reader that finds it ringing), never over a newer entry; ``queued`` reads only the tasks
  whose entry says ``q``, so a dispatch does not read every ringing task.
- ``chat|<chat id>``: one entry per session relayed in a chat, with a ``live`` hint.
  ``sessions.by_chat`` (every agent message in a chatroom) reads this partition: the live ones,
  or the latest. Created before the write that gives the session its chat; ``live`` goes false
  after the committed write that leaves the connected phase (never to return), so a stale hint
  can only claim "live" for a session that is not, which the session document then says.

Units of work, batches, ordering and conflicts
==============================================
A unit of work keeps an identity map (one object per entity, as ``sqlite.py``), remembers the
ETag of every document it read, and *buffers* its writes. ``commit()`` sorts them into steps
(``flush_order``) and sends each step's writes to one logical partition (same container, same
``pk``) as one *transactional batch* (``execute_item_batch``: up to 100 operations, all or
nothing, each conditional on its own ``if_match_etag``); a partition with a single write gets a
plain point write. Several writes to one item in a batch fold into one operation, conditional on
the item as the commit found it.

1. Steps, in order: guards (below); then the writes that can lose a race (``save``/``delete``
   of an item that existed: a replace or delete on the ETag read), the use case's deciding
   write first; then new items (``add``: a create, 409 if taken), messages and upserts, with
   the timers' upserts last. Each step is one batch per partition, at the place of the
   partition's first write in that step. Strict writes are conditional: ``save`` replaces only
   if the ETag is still the one read (412 -> ConflictError; a save whose entity was not read in
   this unit of work reads it and compares ``version`` first), ``add`` creates (409 ->
   ConflictError). Timers: ``delete`` and ``save`` are conditional the same way, which is what
   lets exactly one instance fire a timer or lease a job; ``arm`` (create, or move keeping a
   running job's lease, ``version + 1``) and ``cancel`` mean "whatever is there now", so when
   their operation fails a batch they re-read and the batch goes again (bounded, safe to
   repeat). Messages take the next free number of their task the same way (409: renumber).
   Index entries (``Hooks.before``) are written before the batch that holds their entity.
2. What is atomic together, so no other instance ever sees part of it: the writes of one step
   to one partition. In practice: every agent a commit writes (the roster is one partition:
   dispatch's capacity writes, accept rescinding parallel offers); a commit's timer claims and
   lease saves, and apart from them its timer arms and cancels; a task's messages; a task's
   web-request deliveries (``outbox|<task>``). A task, each of its sessions, its messages and
   the timers are in different containers or partitions, and a batch cannot span either: those
   keep the ordering of step 1 (moving sessions into the tasks container under the task id
   would make accept's task and session writes one batch, but changes every session lookup,
   query and deploy template: not done).
3. If a batch or write fails, the batches and writes before it are undone in reverse order, one
   undo per document (back to what was there before its first write), each only if the
   document still carries the ETag this flush last gave it (someone who wrote since keeps their
   write), and the error is raised: a lost race (the Engine retries the use case on
   ConflictError) leaves nothing behind, and what was written to the losing partition was never
   visible. Another instance can still see the partitions written before the one that lost,
   until the undo; the step order keeps that harmless: guards are flushed first, so a commit
   that loses on one has written nothing; new items (a ringing session, a due job) are shown
   only once every write that can lose has succeeded. If the process dies mid-flush the undo
   cannot run; the use cases keep that survivable (timers check state before acting; indexes
   tolerate stray entries).
4. After every state write succeeded: index clean-up, then the events (one atomic ``incr`` of
   the ``seq|events`` counter reserves a block of numbers, then the events are written, one
   batch per partition: a task's events of one commit appear together), then tag counts. None
   of these decides anything, so they never need undoing.

The stand-in used by the tests (``@vercel/cosmosdb-server``) cannot run the SDK's batches; the
tests preload the documented batch semantics into it (``tests/cosmos_server.py``).

Cosmos DB checks what a commit writes, never what it read, and a unit of work's reads are not
one snapshot. Two consequences, both handled here:

- Write skew: two units of work that each decide on the other's old state both commit when they
  write different documents (instance A frees an agent and finds no queued task while instance
  B queues a task and finds no free agent: the task would wait). ``guard(key)`` makes such
  decisions conflict: a strict write of one small ``guard|<key>`` document in ``meta``.
  ``dispatch`` guards ``dispatch|<service>``, so of two dispatches in one service that overlap,
  one commits and the other runs again on fresh state (on SQLite, writers are serialised and
  ``guard`` does nothing). Within one process, units of work that guard one key take turns (an
  asyncio lock per key, held from ``guard`` until their state writes are done, waited for only
  for a unit's first key) instead of racing each other: only other instances race for it.
- Read skew: a use case may read one document before and another after some other instance's
  commit, and refuse (``Refused``/``Stale``) on that mix. When a unit of work ends with a
  refusal, it reads again every document it had read; if one changed, the refusal becomes a
  ConflictError and the Engine runs the use case again on fresh state. (A real refusal costs
  those point reads; refusals are rare and answer a person.)

A use case that raises (a domain error, a conflict) never reaches commit: nothing is written,
as with SQLite's rollback. Reads inside a unit of work see its own buffered writes: ``get`` via
the identity map, queries by overlaying the documents it wrote (judged by what it wrote; others
by what the database answered). ``Counters.next`` is the one immediate write (a number taken by a
unit of work that then fails is skipped, as the design of visitor numbers allows).

Versions: every document carries the domain ``version`` (1 on add, +1 per save/arm), equal to
what SQLite would give; the ETag is what the database checks. An undo may put an older
``version`` back together with the older content; the ETag still changes, so no stale writer
can slip through.

Event order: ``seq`` is global and increasing. A reader can see number n+1 before n is written
(two commits reserve blocks, the second writes first); ``after(seq)`` therefore returns events
only up to the first gap, unless the gap is older than ``event_gap_grace`` seconds (measured by
the server timestamp ``_ts`` of the event after it: numbers reserved by a writer that died are
skipped then), so a reporting reader never steps over an event that is still coming.

Queries page with continuation tokens (``max_item_count``/``by_page``), never ``OFFSET/LIMIT``;
``for_agent(limit, offset)`` pages through ``ORDER BY offered DESC`` and skips in code. Queries
order by one field only (multi-field ``ORDER BY`` needs composite indexes the templates do not
define); ties and the final order are settled in code.

Retention
=========
``CosmosOptions.ttl(container, obj)`` gives a document a ``ttl`` in seconds (-1: forever; None:
the container default, never). The default, ``customer_data_ttl``, carries out the GDPR rules
of ``bot.services.privacy`` even when no instance runs: chat lines (``messages``) always, and a
task or session document while it holds customer context (name, email, phone, parameters, the
label; a task's content), get ``CUSTOMER_DATA_TTL`` = the 30-day purge horizon plus a week (37
days). Cosmos DB counts a TTL from the item's last write, and every write sets it again, so a
document is removed 37 days after it last changed: never while its task is live (a live task is
written far more often: queue time and the stale-session sweep end it within a day by default;
settings of more than 37 days for ``max_queue_time`` or ``stale_session_after`` would break
that), and after conclusion only past the purge the timer does. A document written without
context (conclusion strips it unless the service opted in; the purge timer strips the rest) has
no ``ttl`` and stays, as the reporting record. Chat lines are written once, so they go 37 days
after they were sent. The containers must have TTL switched on with no default
(``defaultTtl -1``), as ``open_cosmos`` and the deploy templates create them.

Throttling and transient errors
===============================
The SDK retries 429 (honouring ``x-ms-retry-after-ms``) up to ``retry_total`` times within
``retry_backoff_max`` seconds per request, and retries connection and read errors
(``retry_connect``/``retry_read``); writes are not re-sent after a timeout (not idempotent).
What still fails becomes StoreUnavailable. Conditional-write retries happen only where repeating
is safe (timer arm/cancel, message numbers, counters, index entries, ``write_retries`` times);
a failed ETag check on an entity is ConflictError and left to the Engine's whole-use-case retry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, Self

from azure.core.exceptions import AzureError
from azure.cosmos import PartitionKey
from azure.cosmos import exceptions as cosmos_errors
from azure.cosmos.aio import ContainerProxy, CosmosClient, DatabaseProxy

from bot.domain.errors import Refused
from bot.services.ports import ConflictError, StoreUnavailable
from bot.storage.cosmos_base import (
    CONTAINERS,
    EVENTS,
    MESSAGES,
    PARTITION_KEY_PATH,
    unavailable,
)
from bot.storage.cosmos_changes import CosmosChangeFeed, CosmosFeeds, board_of
from bot.storage.cosmos_core import (
    UnitOfWorkCore,
)
from bot.storage.cosmos_records import (
    CosmosCounters,
    CosmosEvents,
    CosmosMessages,
    CosmosOutbox,
    CosmosTags,
    CosmosTimers,
)
from bot.storage.cosmos_repos import (
    CosmosAgents,
    CosmosSessions,
    CosmosTasks,
    TtlPolicy,
    customer_data_ttl,
)

log = logging.getLogger(__name__)

# Queries only filter and sort on top-level fields: the encoded entity under /data is not
# indexed, which makes every write cheaper (the deploy templates should say the same).
INDEXING_POLICY: dict[str, Any] = {
    "indexingMode": "consistent", "automatic": True,
    "includedPaths": [{"path": "/*"}],
    "excludedPaths": [{"path": "/data/*"}, {"path": '/"_etag"/?'}],
}

__all__ = ["CONTAINERS", "INDEXING_POLICY", "CosmosOptions", "CosmosStore", "CosmosUnitOfWork",
           "open_cosmos"]


@dataclass(frozen=True)
class CosmosOptions:
    retry_total: int = 9  # throttled (429) retries per request, as the service asks
    retry_backoff_max: int = 30  # seconds of throttling waits per request at most
    retry_connect: int = 3
    retry_read: int = 3
    connection_timeout: int = 10  # seconds per HTTP request
    write_retries: int = 8  # re-applications of repeat-safe conditional writes
    event_gap_grace: float = 60.0  # seconds before events.after steps over a missing number
    ttl: TtlPolicy | None = customer_data_ttl  # None: no item gets a TTL
    create_missing: bool = True  # create the database and containers when absent

    def client_kwargs(self) -> dict[str, Any]:
        return {"retry_total": self.retry_total, "retry_backoff_max": self.retry_backoff_max,
                "retry_connect": self.retry_connect, "retry_read": self.retry_read,
                "connection_timeout": self.connection_timeout}


class CosmosSettings(Protocol):
    """The part of `bot.config.Settings` this store reads."""

    @property
    def cosmos_endpoint(self) -> str: ...
    @property
    def cosmos_key(self) -> str: ...
    @property
    def cosmos_database(self) -> str: ...


class CosmosStore:
    """One CosmosClient per store (per process); units of work are cheap."""

    def __init__(self, client: CosmosClient, database: str, *,
                 options: CosmosOptions | None = None, owned: tuple[Any, ...] = ()) -> None:
        self.client = client
        self.database_name = database
        self.options = options or CosmosOptions()
        self.write_retries = self.options.write_retries
        self._owned = owned  # closed with the store: the client, a credential
        self._database: DatabaseProxy | None = None
        self._containers: dict[str, ContainerProxy] = {}
        self.guard_locks: dict[str, asyncio.Lock] = {}

    async def open(self) -> Self:
        try:
            if self.options.create_missing:
                try:
                    await self._create()
                    return self
                except cosmos_errors.CosmosHttpResponseError as exc:
                    # Data-plane RBAC (a managed identity) may not create databases or
                    # containers; the deploy templates do. Fall through and just check them.
                    if exc.status_code != 403:
                        raise
                    log.info("cannot create Cosmos DB resources; checking they exist")
            await self._check()
        except cosmos_errors.CosmosResourceNotFoundError as exc:
            raise StoreUnavailable(
                f"Cosmos DB database {self.database_name!r} or one of its containers "
                f"{', '.join(CONTAINERS)} is missing: {exc.message}") from exc
        except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
            raise unavailable(exc) from exc
        except ValueError as exc:  # the key is not base64: signing the first request fails
            raise StoreUnavailable(f"cannot sign Cosmos DB requests with COSMOS_KEY: {exc}") \
                from exc
        return self

    async def _create(self) -> None:
        database = await self.client.create_database_if_not_exists(self.database_name)
        self._database = database
        for name in CONTAINERS:
            self._containers[name] = await database.create_container_if_not_exists(
                id=name, partition_key=PartitionKey(path=PARTITION_KEY_PATH), default_ttl=-1,
                indexing_policy=INDEXING_POLICY)

    async def _check(self) -> None:
        database = self.client.get_database_client(self.database_name)
        await database.read()
        self._database = database
        for name in CONTAINERS:
            container = database.get_container_client(name)
            await container.read()
            self._containers[name] = container

    def container(self, name: str) -> ContainerProxy:
        try:
            return self._containers[name]
        except KeyError:
            raise StoreUnavailable("the Cosmos DB store is not open") from None

    def read_only(self) -> CosmosUnitOfWork:
        """Cosmos DB units of work never wait for each other: a plain one."""
        return self.unit_of_work()

    def unit_of_work(self) -> CosmosUnitOfWork:
        return CosmosUnitOfWork(self)

    async def sync(self) -> None:
        """Nothing to wait for: Cosmos DB acknowledges a write once it is durable."""

    async def changes(self) -> CosmosFeeds:
        return CosmosFeeds(await CosmosChangeFeed.start(self.container(MESSAGES)),
                           await CosmosChangeFeed.start(self.container(EVENTS), board_of))

    async def ping(self) -> None:
        if self._database is None:
            raise StoreUnavailable("the Cosmos DB store is not open")
        try:
            await self._database.read()
        except (cosmos_errors.CosmosHttpResponseError, AzureError) as exc:
            raise unavailable(exc) from exc

    async def close(self) -> None:
        self._containers.clear()
        self._database = None
        for resource in self._owned:
            try:
                await resource.close()
            except Exception as exc:  # closing must not fail a shutdown
                log.warning("closing a Cosmos DB resource failed", extra={"error": str(exc)})
        self._owned = ()


class CosmosUnitOfWork(UnitOfWorkCore):
    """See the module docstring: reads now, writes buffered and flushed in order at commit."""

    def __init__(self, store: CosmosStore) -> None:
        super().__init__(store)
        ttl = store.options.ttl
        self.agents = CosmosAgents(self, ttl)
        self.tasks = CosmosTasks(self, ttl)
        self.sessions = CosmosSessions(self, ttl)
        self.events = CosmosEvents(self, ttl, store.options.event_gap_grace)
        self.timers = CosmosTimers(self, ttl)
        self.messages = CosmosMessages(self, ttl)
        self.counters = CosmosCounters(self, ttl)
        self.tags = CosmosTags(self, ttl)
        self.outbox = CosmosOutbox(self, ttl)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, _type: object, exc: object, _tb: object) -> None:
        # Nothing was written unless commit() ran: dropping the buffer is the rollback.
        self.writes.clear()
        self.finals.clear()
        self.release()
        if isinstance(exc, Refused) and await self.reads_changed():
            # Decided on reads from before and after another commit: run it again.
            raise ConflictError("what this unit of work read changed meanwhile") from exc

    def announce(self, topics: Iterable[str]) -> None:
        """Nothing to write: the change feed of `messages` carries every chat row."""

    async def commit(self) -> None:
        try:
            await super().commit()
        finally:
            self.messages.committed()
            self.outbox.committed()
            self.events.pending = []


async def open_cosmos(settings: CosmosSettings, *,
                      options: CosmosOptions | None = None) -> CosmosStore:
    """Connect with COSMOS_KEY, or without one through a managed identity (azure-identity)."""
    options = options or CosmosOptions()
    owned: list[Any] = []
    credential: Any
    if settings.cosmos_key:
        credential = settings.cosmos_key
    else:
        # Imported only here: key-based and SQLite deployments never load azure-identity.
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
        owned.append(credential)
    try:
        client = CosmosClient(settings.cosmos_endpoint, credential, **options.client_kwargs())
    except ValueError as exc:  # e.g. an endpoint that is not a URL
        for resource in owned:
            await resource.close()
        raise StoreUnavailable(f"cannot use COSMOS_ENDPOINT: {exc}") from exc
    owned.insert(0, client)
    store = CosmosStore(client, settings.cosmos_database, options=options, owned=tuple(owned))
    try:
        return await store.open()
    except BaseException:
        await store.close()
        raise
