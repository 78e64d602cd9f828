"""The embedded default store: SQLite through aiosqlite, WAL, versioned rows.

`SqliteStore` opens the connections (a writer, a query-only reader, a checkpointer), migrates
the schema and checkpoints the WAL; `SqliteUnitOfWork` is a transaction over them. How their
statements reach the database is `bot.storage.sqlite_driver`; the repositories are in
`bot.storage.sqlite_repos` (agents, tasks, sessions) and `bot.storage.sqlite_records` (events,
timers, messages, counters, tags, outbox)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Self

import aiosqlite

from bot.services.ports import ConflictError, StoreUnavailable
from bot.storage.schema import ENSURED, LATEST, MIGRATIONS
from bot.storage.sqlite_changes import SqliteChangeFeed
from bot.storage.sqlite_driver import (
    COMMIT,
    EXECUTE,
    FETCH,
    Batch,
    Lane,
    Txn,
    Write,
    end_txn,
    take_write_lock,
)
from bot.storage.sqlite_durability import WalSync, create_private
from bot.storage.sqlite_records import (
    SqliteCounters,
    SqliteEvents,
    SqliteMessages,
    SqliteOutbox,
    SqliteTags,
    SqliteTimers,
)
from bot.storage.sqlite_repos import SqliteAgents, SqliteSessions, SqliteTasks

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 1.0  # seconds between WAL checkpoints
# Change-feed rows one INSERT writes at most (two parameters each, far below SQLite's limit).
ANNOUNCE_ROWS = 200

# Seconds between the truncations that take deleted customer data out of the WAL file (the
# rows are gone at once; their old page images linger in the WAL until then). A truncation
# keeps every writer of the file out while it runs: at every checkpoint it cost the invitation
# p99 at 50 new tasks/s ten times over, and every 30 s it still showed in three processes.
SCRUB_EVERY = 300.0
# Seconds before a truncation that found someone in the way is tried again: soon (the deleted
# data should not linger), but not at every checkpoint, where each attempt under load would
# briefly hold the writers up again.
SCRUB_RETRY = 10.0


class SqliteStore:
    """One aiosqlite connection for units of work, which take turns on it (an asyncio lock),
    and a second, query-only one for read-only units of work, which take no turn (WAL: readers
    never wait for the writer). See `SqliteUnitOfWork` and `Lane` for how statements run."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 2000,
                 changes_kept: int = 20_000, prune_every: int = 500,
                 scrub_every: float = SCRUB_EVERY, scrub_retry: float = SCRUB_RETRY) -> None:
        self.path = str(path)
        # Deleted customer data leaves the WAL (a truncating checkpoint) at most this often:
        # the truncation keeps writers out while it runs, so not at every checkpoint.
        self.scrub_every = scrub_every
        self.scrub_retry = scrub_retry
        self._scrub_after = float("-inf")  # monotonic time the next truncation may run
        # The change feed keeps its last `changes_kept` rows (a feed further behind has lost
        # track); this store prunes it once every `prune_every` commits that announce something.
        self.changes_kept = changes_kept
        self.prune_every = prune_every
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lanes: dict[bool, Lane] = {}  # by read_only
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._txn = Txn()
        # Who wrote a row of the change feed: this store's own commits wake its chats at once
        # (Engine listeners), so its feed leaves them out.
        self.origin = uuid.uuid4().hex
        self.announced = 0
        self._durable: WalSync | None = None
        # Customer data was deleted: the next checkpoint truncates the WAL, so the old page
        # images holding it leave the disk too (secure_delete zeroes them in the database).
        self.scrub_requested = False

    async def _connect(self) -> aiosqlite.Connection:
        # Used from the event loop's thread too (`Lane`), never from two threads at once.
        conn = await aiosqlite.connect(self.path, isolation_level=None, check_same_thread=False)
        await conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        # Deleted rows (customer data at conclusion, purge and erasure) are overwritten with
        # zeros in the page, not merely unlinked.
        await conn.execute("PRAGMA secure_delete = ON")
        return conn

    async def open(self) -> Self:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            create_private(Path(self.path))
            self._durable = WalSync(Path(f"{self.path}-wal"))
        conn = await self._connect()
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        self._conn = conn
        await self._migrate()
        if self.path != ":memory:":
            reader = await self._connect()
            await reader.execute("PRAGMA query_only = ON")
            self._reader = reader
            # Checkpoints copy the WAL into the database file and fsync it: left to the
            # writer, one lands in some COMMIT now and then and holds up every writer behind
            # it. A connection of its own does them, PASSIVE (never waiting on anyone).
            await conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpointer = await self._connect()
            await self._checkpointer.execute("PRAGMA busy_timeout = 0")  # never waits
            self._checkpointing = asyncio.create_task(self._checkpoint_loop())
        for read_only, lane_conn in ((False, conn), (True, self._reader or conn)):
            await lane_conn.execute("PRAGMA busy_timeout = 0")  # Batch._execute waits
            self._lanes[read_only] = Lane(lane_conn)
        return self

    async def _checkpoint_loop(self) -> None:
        assert self._checkpointer is not None
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY)
            try:
                await self.checkpoint()
            except sqlite3.Error as exc:  # locked or unwritable: the next one catches up
                log.debug("checkpoint skipped", extra={"error": type(exc).__name__})

    async def checkpoint(self) -> None:
        """Copy the WAL into the database; after customer data was deleted, also truncate the
        WAL to nothing (it still holds the page images from before the deletion), at most once
        every `scrub_every` seconds, without waiting for anyone: while readers or writers stand
        in the way, it is tried again `scrub_retry` seconds later."""
        if self._checkpointer is None:
            return
        now = time.monotonic()
        if not self.scrub_requested or now < self._scrub_after:
            await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            return
        self.scrub_requested = False
        self._scrub_after = now + self.scrub_retry  # unless it works: then scrub_every
        try:
            # Copy the frames first without holding anyone up: the TRUNCATE, which keeps
            # writers out while it runs, then has next to nothing left to copy.
            await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            rows = list(await self._checkpointer.execute_fetchall(
                "PRAGMA wal_checkpoint(TRUNCATE)"))
        except sqlite3.Error:
            self.scrub_requested = True
            raise
        if not rows or rows[0][0]:  # busy: someone stood in the way; tried again later
            self.scrub_requested = True
        else:
            self._scrub_after = now + self.scrub_every

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
                for statement in ENSURED:
                    await self.conn.execute(statement)
                await self.conn.execute("COMMIT")
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise

    def unit_of_work(self) -> SqliteUnitOfWork:
        return SqliteUnitOfWork(self)

    async def changes(self) -> SqliteChangeFeed:
        return await SqliteChangeFeed.start(self)

    def read_only(self) -> SqliteUnitOfWork:
        """A unit of work for reading only, on the query-only connection: it takes no turn on
        the write lock, so it never waits for a writer and no writer waits for it. Each read
        sees what was committed when it ran (no snapshot across its reads); writing raises."""
        return SqliteUnitOfWork(self, read_only=True)

    def lane(self, read_only: bool) -> Lane:
        if not self._lanes or self._conn is None:
            raise StoreUnavailable("the store is not open")
        return self._lanes[read_only]

    def _end_later(self, owner: object) -> None:
        """End `owner`'s transaction (a ROLLBACK: nothing to keep) without waiting for it:
        now, or queued on the connection's thread before anything queued after it."""
        if self._conn is None:
            return
        # Nothing waits for it, and a failed ROLLBACK is ended by the next BEGIN.
        # close() queues behind it, so it runs before the connection closes.
        with contextlib.suppress(ValueError):  # closed meanwhile
            self.lane(False).run(functools.partial(end_txn, self._txn, owner))

    async def sync(self) -> None:
        """Every commit so far survives power loss once this returns (WalSync)."""
        if self._durable is not None:
            await self._durable.sync()

    async def ping(self) -> None:
        """Readable and writable right now: take the write lock briefly and let it go."""
        async with self._lock:
            try:
                await self.lane(False).call(functools.partial(take_write_lock, self._txn))
            except sqlite3.Error as exc:
                raise StoreUnavailable(str(exc)) from exc

    async def close(self) -> None:
        if self._checkpointing is not None:
            self._checkpointing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointing
        for conn in (self._checkpointer, self._reader, self._conn):
            if conn is not None:
                await conn.close()
        self._conn = self._reader = self._checkpointer = self._checkpointing = None
        self._lanes = {}


class SqliteUnitOfWork:
    """A transaction: reads see one snapshot, writes check versions, commit makes it all stick.

    Statements go to the database in hops (`Lane`: on the loop's thread when the
    connection's thread is idle, else there), and a hop carries as much as it can: writes whose
    result nothing needs at once (inserts, versioned updates and deletes, timers, events) are
    held back (`write`) and go with the next read, or with the COMMIT; BEGIN goes with the
    first statement; and a unit of work that changed nothing ends without a hop of its own (its
    ROLLBACK is not waited for). So a unit of work costs one hop per read, plus one to commit
    if it wrote — and a hop that has to go to the connection's thread costs only one loop turn.

    What the caller sees stays as if each statement ran at once: a read sees the writes made
    before it; a stale version or an existing id raises ConflictError, at the latest from the
    read or the commit that carried it, or from leaving the block with an error while writes
    were held back (so the engine retries on fresh state rather than reporting that error);
    sequence numbers (`event.seq`, `message.seq`, `delivery.seq`) are set once their write
    ran, by the next read or the commit. Versions bumped in a unit of work that does not
    commit go back to what they were.
    """

    def __init__(self, store: SqliteStore, *, read_only: bool = False) -> None:
        self.store = store
        self.read_only = read_only
        # Without a second connection (an in-memory database) reads take turns like writes.
        self.locking = not read_only or store._reader is None
        self.identity: dict[tuple[str, str], Any] = {}
        # Rows read ahead, not decoded yet: (table, id) -> (id, version, data).
        self.read_ahead: dict[tuple[str, str], Sequence[Any]] = {}
        self._pending: list[Write] = []
        self._undo: dict[int, tuple[Any, int]] = {}
        self._locked = False
        self._locked_at = 0.0
        self.held = 0.0  # seconds this unit of work held the store's lock
        self._begun = False  # a transaction is open (BEGIN went out)
        self._dirty = False  # it may hold changes: COMMIT them
        self._committed = False
        self.hops = 0  # trips to the database (bench/storecost.py reports them)
        self.statements = 0
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
        if self.locking:
            await self.store._lock.acquire()
            self._locked = True
            self._locked_at = time.perf_counter()
        return self

    def _release(self) -> None:
        if self._locked:
            self._locked = False
            self.held += time.perf_counter() - self._locked_at
            self.store._lock.release()

    async def __aexit__(self, _type: object, exc: object, _tb: object) -> None:
        try:
            if (self._pending and isinstance(exc, Exception)
                    and not isinstance(exc, ConflictError | StoreUnavailable)):
                # Had these writes run at once, a lost race would have surfaced before this
                # error: report the conflict (the engine retries) rather than the error.
                try:
                    await self._hop(None)
                except ConflictError as conflict:
                    raise conflict from exc
                except Exception:
                    pass  # the original error is the one to report
        finally:
            self._pending = []
            if not self._committed:
                for entity, version in self._undo.values():
                    entity.version = version
            if self._begun:  # no COMMIT went out: a read transaction, or a failed one
                self._begun = False
                self.statements += 1  # the ROLLBACK
                self.store._end_later(self)
            self._release()

    async def guard(self, key: str) -> None:
        """Nothing to do: units of work that write are serialised here (one lock in-process,
        and across processes a write on an outdated WAL snapshot fails as a conflict)."""

    async def commit(self) -> None:
        """Make the writes stick; returns once they are durable. The next unit of work gets
        the lock as soon as the COMMIT is queued: its statements run after it on the same
        thread, and if the COMMIT fails, its BEGIN first rolls back what is left of ours."""
        if self._pending or self._dirty:
            sent = self._send(COMMIT)
            self._release()
            if sent is not None:
                await self._receive(sent)
            self._begun = False
        # Else nothing to make durable: __aexit__ ends the read transaction, unwaited.
        self._committed = True
        self._undo.clear()

    def announce(self, topics: Iterable[str]) -> None:
        """Rows of the change feed, written with this commit (held back like any write)."""
        origin = self.store.origin
        rows = list(topics)
        for start in range(0, len(rows), ANNOUNCE_ROWS):  # one statement for a commit's topics
            part = rows[start:start + ANNOUNCE_ROWS]
            self.write("INSERT INTO changes (topic, origin) VALUES "
                       + ", ".join(["(?, ?)"] * len(part)),
                       [value for topic in part for value in (topic, origin)])
        self.store.announced += 1
        if self.store.announced % self.store.prune_every == 0:
            self.write("DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?",
                       (self.store.changes_kept,))

    def write(self, sql: str, params: Sequence[Any] = (), *, conflict: str | None = None,
              returning: bool = False, done: Callable[[Any], None] | None = None) -> None:
        """Hold a write back until the next read or the commit (see the class docstring).

        `conflict`: the write must change exactly one row, else ConflictError(conflict).
        `returning`: the statement returns rows (RETURNING); `done` gets them, else `done` gets
        the statement's lastrowid, once it ran."""
        if self.read_only:
            raise TypeError("a read-only unit of work cannot write")
        self._pending.append(Write(sql, params, conflict, returning, done))

    def scrub(self) -> None:
        """Customer data was deleted: the next checkpoint truncates the WAL (`checkpoint`)."""
        self.store.scrub_requested = True

    def versioned(self, entity: Any, version: int) -> None:
        """Set `entity.version`, remembering the old one in case this unit of work fails."""
        self._undo.setdefault(id(entity), (entity, entity.version))
        entity.version = version

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run a statement now (with the writes held back before it) and return its cursor
        (its attributes only: fetching from it could race the connection's thread)."""
        cursor: sqlite3.Cursor = await self._hop(EXECUTE, sql, params)
        return cursor

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a query now (with the writes held back before it) and return its rows."""
        rows: list[sqlite3.Row] = await self._hop(FETCH, sql, params)
        return rows

    async def _hop(self, final: str | None, sql: str = "", params: Sequence[Any] = ()) -> Any:
        sent = self._send(final, sql, params)
        return None if sent is None else await self._receive(sent)

    def _send(self, final: str | None, sql: str = "", params: Sequence[Any] = (),
              ) -> Batch | None:
        """Send a hop (`Lane.run`: now, or on the connection's thread); nothing to send: None."""
        if self.locking and not self._locked:
            raise RuntimeError("use the unit of work in an `async with` block")
        writes, self._pending = self._pending, []
        begin = self.locking and not self._begun
        if not (begin or writes or final):
            return None
        batch = Batch(self.store._txn, self, begin, writes, final, sql, params,
                       self.store.busy_timeout_ms)
        self.store.lane(not self.locking).run(batch)
        self._begun = self._begun or begin
        self._dirty = self._dirty or bool(writes) or final == EXECUTE
        self.hops += 1
        self.statements += begin + len(writes) + (final is not None)
        return batch

    async def _receive(self, batch: Batch) -> Any:
        """The hop's outcome: there already if it ran on the loop's thread, else awaited."""
        if not batch.ran.acquire(blocking=False):
            waiter = batch.waiter(asyncio.get_running_loop())
            if waiter is not None:
                await waiter
        if batch.error is not None:
            raise batch.error
        assert batch.outcome is not None
        done, result, changed = batch.outcome
        self._dirty = self._dirty or changed
        for write, value in zip(batch.writes, done, strict=False):
            if write.done is not None:
                write.done(value)
        return result

