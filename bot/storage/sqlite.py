"""The embedded default store: SQLite through aiosqlite, WAL, versioned rows."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

import aiosqlite

from bot.domain.agent import Agent, Availability
from bot.domain.events import Event
from bot.domain.message import ChatMessage, Kind, Sender
from bot.domain.routing import idle_key
from bot.domain.service import Modality
from bot.domain.session import Phase, Session
from bot.domain.task import Task, TaskState
from bot.domain.timers import Timer
from bot.services.ports import (
    ConflictError,
    EventFilter,
    Scan,
    SessionFilter,
    SessionSearch,
    StoreUnavailable,
)
from bot.storage.codec import decode, encode, micros
from bot.storage.schema import ENSURED, LATEST, MIGRATIONS
from bot.storage.sqlite_changes import SqliteChangeFeed
from bot.storage.sqlite_durability import WalSync, create_private
from bot.webhooks.model import Delivery

E = TypeVar("E", Agent, Task, Session)
R = TypeVar("R")


log = logging.getLogger(__name__)


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


class _Write:
    """A statement held back until the unit of work next talks to the database."""

    __slots__ = ("conflict", "done", "params", "returning", "sql")

    def __init__(self, sql: str, params: Sequence[Any], conflict: str | None,
                 returning: bool, done: Callable[[Any], None] | None) -> None:
        self.sql, self.params, self.conflict = sql, params, conflict
        self.returning, self.done = returning, done

    def __repr__(self) -> str:  # aiosqlite logs what it runs at DEBUG: never the parameters
        return f"<write {self.sql.split(' ', 3)[:3]}>"


class _Txn:
    """Which unit of work's transaction is open on a connection. Read and changed on the
    connection's own thread only, so a late ROLLBACK can never end a newer transaction."""

    __slots__ = ("owner",)

    def __init__(self) -> None:
        self.owner: object | None = None


_FETCH, _EXECUTE, _COMMIT = "fetch", "execute", "commit"
# Another connection holds the lock (or the WAL is being recovered): SQLite's busy handler
# may wait for it. Not SQLITE_BUSY_SNAPSHOT (517): our snapshot is outdated, no wait helps.
_HELD_ELSEWHERE = frozenset({5, 261, 773})  # SQLITE_BUSY, _BUSY_RECOVERY, _BUSY_TIMEOUT


class _MustWait(Exception):
    """A statement found a lock held elsewhere, on a thread that must not wait for it."""


class _Batch:
    """One hop, on the event loop's thread or the connection's (`_Lane`): BEGIN if due, the
    held-back writes in order (stopping at the first that fails or finds its row changed), then
    one read, statement or COMMIT."""

    __slots__ = ("_before", "_begun", "_done", "_finished", "_state", "_waiter", "begin",
                 "busy_timeout_ms", "error", "final", "outcome", "owner", "params", "ran", "sql",
                 "txn", "writes")

    def __init__(self, txn: _Txn, owner: object, begin: bool, writes: list[_Write],
                 final: str | None, sql: str, params: Sequence[Any],
                 busy_timeout_ms: int) -> None:
        self.txn, self.owner, self.begin, self.writes = txn, owner, begin, writes
        self.final, self.sql, self.params = final, sql, params
        self.busy_timeout_ms = busy_timeout_ms
        self.outcome: tuple[list[Any], Any, bool] | None = None
        self.error: BaseException | None = None
        # How far it got: a batch that met a lock held elsewhere on the event loop's thread
        # goes on from there on the connection's thread.
        self._before: int | None = None
        self._begun = False
        self._done: list[Any] = []
        self.ran = threading.Lock()  # held until the batch ran (see SqliteUnitOfWork._receive)
        self.ran.acquire()
        # Only a caller that stopped waiting on `ran` gets a future (resolved on its loop):
        # most hops end within the spin and cost the loop no wake-up at all.
        self._state = threading.Lock()
        self._finished = False
        self._waiter: asyncio.Future[None] | None = None

    def waiter(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None] | None:
        """A future resolved once the batch ran; None when it already has."""
        with self._state:
            if self._finished:
                return None
            self._waiter = loop.create_future()
            return self._waiter

    def __repr__(self) -> str:
        return f"<batch of {len(self.writes)} writes, then {self.final}>"

    def __call__(self, db: sqlite3.Connection) -> None:
        """Run on the connection's thread, where SQLite's busy handler may wait for a lock
        held elsewhere (as it decides: not when a read transaction would have to become a
        write one, for instance)."""
        with contextlib.suppress(sqlite3.Error):  # else a held lock fails at once
            db.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        try:
            self._settle(db, patient=True)  # releases the waiting unit of work, whatever happens
        finally:
            with contextlib.suppress(sqlite3.Error):
                db.execute("PRAGMA busy_timeout = 0")

    def run_here(self, db: sqlite3.Connection) -> bool:
        """Run on the calling thread, unless a statement finds a lock held elsewhere: then
        False, and the rest is for the connection's thread (`__call__`)."""
        return self._settle(db, patient=False)

    def _settle(self, db: sqlite3.Connection, patient: bool) -> bool:
        try:
            self.outcome = self._run(db, patient)
        except _MustWait:
            return False
        except BaseException as exc:  # the unit of work raises it (_receive)
            self.error = exc
        with self._state:
            self._finished = True
            waiter = self._waiter
        self.ran.release()
        if waiter is not None:
            waiter.get_loop().call_soon_threadsafe(_resolve, waiter)
        return True

    def _run(self, db: sqlite3.Connection, patient: bool) -> tuple[list[Any], Any, bool]:
        """(what each write gave: its rows or lastrowid; the final result; whether any row
        changed). Errors come back as ConflictError or StoreUnavailable."""
        if self._before is None:
            self._before = db.total_changes
        started = time.monotonic()
        try:
            if self.begin and not self._begun:
                if db.in_transaction:  # the last unit of work's ROLLBACK is still queued
                    db.execute("ROLLBACK")
                db.execute("BEGIN")
                self.txn.owner = self.owner
                self._begun = True
            while len(self._done) < len(self.writes):
                write = self.writes[len(self._done)]
                started = time.monotonic()
                cursor = self._execute(db, write.sql, write.params, patient)
                rows = cursor.fetchall() if write.returning else None
                if write.conflict is not None and cursor.rowcount != 1:
                    raise ConflictError(write.conflict)
                self._done.append(rows if write.returning else cursor.lastrowid)
            result: Any = None
            started = time.monotonic()
            if self.final == _FETCH:
                result = self._execute(db, self.sql, self.params, patient).fetchall()
            elif self.final == _EXECUTE:
                result = self._execute(db, self.sql, self.params, patient)
            elif self.final == _COMMIT:
                self._execute(db, "COMMIT", (), patient)
                self.txn.owner = None
            return self._done, result, db.total_changes != self._before
        except sqlite3.Error as exc:
            raise _translate(exc, time.monotonic() - started,
                             self.busy_timeout_ms / 1000 * PATIENCE) from exc

    @staticmethod
    def _execute(db: sqlite3.Connection, sql: str, params: Sequence[Any],
                 patient: bool) -> sqlite3.Cursor:
        """One statement. Off the connection's thread the busy timeout is 0: a lock held
        elsewhere means `_MustWait` (the rest of the batch goes to the connection's thread)."""
        try:
            return db.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if not patient and getattr(exc, "sqlite_errorcode", None) in _HELD_ELSEWHERE:
                raise _MustWait from exc
            raise


def _end_txn(txn: _Txn, owner: object, db: sqlite3.Connection) -> None:
    if txn.owner is owner:
        txn.owner = None
        if db.in_transaction:
            db.execute("ROLLBACK")


def _ping(txn: _Txn, db: sqlite3.Connection) -> None:
    try:
        txn.owner = None
        if db.in_transaction:  # a finished unit of work's ROLLBACK is still queued
            db.execute("ROLLBACK")
        db.execute("PRAGMA busy_timeout = 250")
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
    finally:
        db.execute("PRAGMA busy_timeout = 0")  # see _Batch._execute


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # its caller may have been cancelled meanwhile
        waiter.set_result(None)


class _Lane:
    """One aiosqlite connection and the order of what runs on it.

    A statement takes tens of microseconds; a trip to the connection's thread and back costs
    far more (two thread wake-ups and the GIL changing hands twice: under load most of the
    event loop's time went to waiting for them). So a hop runs right here, on the event loop's
    thread, whenever the connection's thread has nothing to do — there the connections wait
    for no lock (busy_timeout 0), the journal is WAL with synchronous NORMAL (no fsync in a
    COMMIT; checkpoints run on a connection of their own), and every query has a LIMIT, so it
    cannot block the loop for long. A hop that meets a lock held elsewhere (another process)
    goes on on the connection's thread, where SQLite's busy handler may wait for it, and what
    comes after queues behind it there: statements run in the order they were sent, whatever
    thread runs them."""

    __slots__ = ("conn", "finished", "queued")

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self.queued = 0  # calls queued on the connection's thread (counted on the loop's)
        self.finished = 0  # of them, how many ended (counted on the connection's thread)

    def run(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        """`fn(db)` now if the connection's thread is idle, else queued behind what it has."""
        db = self.conn._conn  # ValueError once closed, as aiosqlite's own calls raise
        if not self.conn._running:
            raise ValueError("Connection closed")
        if self.queued == self.finished:
            if isinstance(fn, _Batch):
                if fn.run_here(db):
                    return
            else:
                with contextlib.suppress(Exception):  # as on the thread: nobody waits for it
                    fn(db)
                return
        self.put(None, fn)

    def put(self, future: asyncio.Future[Any] | None,
            fn: Callable[[sqlite3.Connection], Any]) -> None:
        """Queue `fn(db)` on the connection's own thread, behind what it already has and
        before anything queued later, exactly as aiosqlite queues each of its own calls
        (`Connection._execute`); the future, if any, resolves on the loop (none: no loop
        wake-up). tests/unit/test_sqlite_mechanics.py pins the attributes this relies on."""
        db = self.conn._conn
        if not self.conn._running:
            raise ValueError("Connection closed")
        self.queued += 1
        self.conn._tx.put_nowait((future, functools.partial(self._on_thread, fn, db)))

    def _on_thread(self, fn: Callable[[sqlite3.Connection], R], db: sqlite3.Connection) -> R:
        try:
            return fn(db)
        finally:
            self.finished += 1

    def call(self, fn: Callable[[sqlite3.Connection], R]) -> asyncio.Future[R]:
        """`fn(db)` on the connection's thread, its result or error through the future."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.put(future, fn)
        return future


class SqliteStore:
    """One aiosqlite connection for units of work, which take turns on it (an asyncio lock),
    and a second, query-only one for read-only units of work, which take no turn (WAL: readers
    never wait for the writer). See `SqliteUnitOfWork` and `_Lane` for how statements run."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 2000,
                 changes_kept: int = 20_000, prune_every: int = 500) -> None:
        self.path = str(path)
        # The change feed keeps its last `changes_kept` rows (a feed further behind has lost
        # track); this store prunes it once every `prune_every` commits that announce something.
        self.changes_kept = changes_kept
        self.prune_every = prune_every
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lanes: dict[bool, _Lane] = {}  # by read_only
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._txn = _Txn()
        # Who wrote a row of the change feed: this store's own commits wake its chats at once
        # (Engine listeners), so its feed leaves them out.
        self.origin = uuid.uuid4().hex
        self.announced = 0
        self._durable: WalSync | None = None

    async def _connect(self) -> aiosqlite.Connection:
        # Used from the event loop's thread too (`_Lane`), never from two threads at once.
        conn = await aiosqlite.connect(self.path, isolation_level=None, check_same_thread=False)
        await conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
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
            self._checkpointing = asyncio.create_task(self._checkpoint_loop())
        for read_only, lane_conn in ((False, conn), (True, self._reader or conn)):
            await lane_conn.execute("PRAGMA busy_timeout = 0")  # _Batch._execute waits
            self._lanes[read_only] = _Lane(lane_conn)
        return self

    async def _checkpoint_loop(self) -> None:
        assert self._checkpointer is not None
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY)
            try:
                await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # locked or unwritable: the next one catches up
                log.debug("checkpoint skipped", extra={"error": type(exc).__name__})

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

    def lane(self, read_only: bool) -> _Lane:
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
            self.lane(False).run(functools.partial(_end_txn, self._txn, owner))

    async def sync(self) -> None:
        """Every commit so far survives power loss once this returns (WalSync)."""
        if self._durable is not None:
            await self._durable.sync()

    async def ping(self) -> None:
        """Readable and writable right now: take the write lock briefly and let it go."""
        async with self._lock:
            try:
                await self.lane(False).call(functools.partial(_ping, self._txn))
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

    Statements go to the database in hops (`_Lane`: on the loop's thread when the
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
        self._identity: dict[tuple[str, str], Any] = {}
        # Rows read ahead, not decoded yet: (table, id) -> (id, version, data).
        self._rows: dict[tuple[str, str], Sequence[Any]] = {}
        self._pending: list[_Write] = []
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
            sent = self._send(_COMMIT)
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
        for topic in topics:
            self.write("INSERT INTO changes (topic, origin) VALUES (?, ?)", (topic, origin))
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
        self._pending.append(_Write(sql, params, conflict, returning, done))

    def versioned(self, entity: Any, version: int) -> None:
        """Set `entity.version`, remembering the old one in case this unit of work fails."""
        self._undo.setdefault(id(entity), (entity, entity.version))
        entity.version = version

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run a statement now (with the writes held back before it) and return its cursor
        (its attributes only: fetching from it could race the connection's thread)."""
        cursor: sqlite3.Cursor = await self._hop(_EXECUTE, sql, params)
        return cursor

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a query now (with the writes held back before it) and return its rows."""
        rows: list[sqlite3.Row] = await self._hop(_FETCH, sql, params)
        return rows

    async def _hop(self, final: str | None, sql: str = "", params: Sequence[Any] = ()) -> Any:
        sent = self._send(final, sql, params)
        return None if sent is None else await self._receive(sent)

    def _send(self, final: str | None, sql: str = "", params: Sequence[Any] = (),
              ) -> _Batch | None:
        """Send a hop (`_Lane.run`: now, or on the connection's thread); nothing to send: None."""
        if self.locking and not self._locked:
            raise RuntimeError("use the unit of work in an `async with` block")
        writes, self._pending = self._pending, []
        begin = self.locking and not self._begun
        if not (begin or writes or final):
            return None
        batch = _Batch(self.store._txn, self, begin, writes, final, sql, params,
                       self.store.busy_timeout_ms)
        self.store.lane(not self.locking).run(batch)
        self._begun = self._begun or begin
        self._dirty = self._dirty or bool(writes) or final == _EXECUTE
        self.hops += 1
        self.statements += begin + len(writes) + (final is not None)
        return batch

    async def _receive(self, batch: _Batch) -> Any:
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


CHECKPOINT_EVERY = 1.0  # seconds between WAL checkpoints

PATIENCE = 0.9  # waiting this share of the busy timeout for a lock: someone holds it


def _back(uow: SqliteUnitOfWork) -> Any:
    """A repository's way back to its unit of work, weak: a strong one would make every unit
    of work a reference cycle, all it read left for the cyclic collector instead of freed as
    it ends (full collections then stalled requests for tens of milliseconds)."""
    return weakref.proxy(uow)


class _Entities(Generic[E]):
    """Rows of one table holding a JSON document, a version and columns to query on."""

    table: str
    cls: type[E]

    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow: SqliteUnitOfWork = _back(uow)

    def columns(self, entity: E) -> dict[str, Any]:
        raise NotImplementedError

    def _load(self, row: Sequence[Any]) -> E:
        """(id, version, data) as an entity: the one this unit of work has, else decoded."""
        key = (self.table, row[0])
        known = self.uow._identity.get(key)
        if known is not None:
            return known  # type: ignore[no-any-return]
        self.uow._rows.pop(key, None)
        entity = decode(self.cls, json.loads(row[2]))
        entity.version = row[1]
        self.uow._identity[key] = entity
        return entity

    async def _select(self, where: str, params: Sequence[Any] = ()) -> list[E]:
        rows = await self.uow.fetch(
            f"SELECT id, version, data FROM {self.table} WHERE {where}", params)
        return [self._load(r) for r in rows]

    async def get(self, entity_id: str) -> E | None:
        key = (self.table, entity_id)
        known = self.uow._identity.get(key)
        if known is not None:
            return known  # type: ignore[no-any-return]
        row = self.uow._rows.get(key)  # read along with its session (SqliteSessions)
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
            (entity.id, 1, _dump(entity), *cols.values()))
        self.uow._identity[(self.table, entity.id)] = entity
        await self.after_write(entity)

    async def save(self, entity: E) -> None:
        """Update it if unchanged since read (held back: ConflictError by the next read or the
        commit at the latest)."""
        cols: dict[str, Any] = self.columns(entity)
        sets = ", ".join(f"{c} = ?" for c in ["version", "data", *cols])
        self.uow.write(
            f"UPDATE {self.table} SET {sets} WHERE id = ? AND version = ?",
            (entity.version + 1, _dump(entity), *cols.values(), entity.id, entity.version),
            conflict=f"{self.table} {entity.id} changed since it was read")
        self.uow.versioned(entity, entity.version + 1)
        self.uow._identity[(self.table, entity.id)] = entity
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
        search = entity.search_text()
        return {"task_id": entity.task_id, "agent_id": entity.agent_id,
                "service_id": entity.service_id, "phase": entity.phase.value,
                "offered_at": ts(entity.offered_at), "connected_at": ts(entity.connected_at),
                "chat_id": entity.chat_id, "card_id": entity.card_id, "search": search}

    async def for_task(self, task_id: str) -> list[Session]:
        return await self._select("task_id = ? ORDER BY offered_at, id", (task_id,))

    async def for_agent(self, agent_id: str, limit: int, offset: int = 0,
                        query: str | SessionSearch = "") -> list[Session]:
        search = query if isinstance(query, SessionSearch) else SessionSearch(text=query)
        where = ["agent_id = ?", "search LIKE ? ESCAPE '\\'"]
        values: list[Any] = [agent_id, "%" + _escape_like(search.text.strip().lower()) + "%"]
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
        known = self.uow._identity.get((self.table, session_id))
        if known is not None:
            return known  # type: ignore[no-any-return]
        return await self._with_task_and_agent("id = ?", (session_id,))

    async def by_chat(self, chat_id: str) -> Session | None:
        """The chat's current session: a connected one first, else the latest."""
        return await self._with_task_and_agent(
            "chat_id = ? ORDER BY phase = 'connected' DESC, offered_at DESC LIMIT 1", (chat_id,))

    async def by_card(self, card_id: str) -> Session | None:
        return await self._with_task_and_agent("card_id = ? LIMIT 1", (card_id,))

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
                if key not in self.uow._identity:
                    self.uow._rows[key] = row[1:]
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
        if where.since is not None:
            window.append("offered_at >= ?")
            values.append(ts(where.since))
        if where.until is not None:
            window.append("offered_at < ?")
            values.append(ts(where.until))
        values.append(scan)
        clauses: list[str] = []
        for column, value in (("service_id", where.service_id), ("agent_id", where.agent_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        if where.services is not None:
            clauses.append(f"service_id IN ({', '.join('?' * len(where.services))})")
            values += sorted(where.services)
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


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqliteEvents:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow: SqliteUnitOfWork = _back(uow)

    async def append(self, event: Event) -> None:
        """Held back: `event.seq` is set once it ran (by the next read or the commit)."""
        def numbered(lastrowid: Any) -> None:
            event.seq = int(lastrowid or 0)

        self.uow.write(
            "INSERT INTO events (at, name, task_id, session_id, agent_id, service_id, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ts(event.at), event.name, event.task_id, event.session_id, event.agent_id,
             event.service_id, json.dumps(encode(event.data), separators=(",", ":"))),
            done=numbered)

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

    async def export(self, where: EventFilter, after: int, limit: int,
                     scan: int) -> Scan[Event, int]:
        """The filters run in the query over a window of `scan` sequence numbers (a range of
        the primary key), so one read looks at no more rows than that."""
        clauses = ["seq > ?", "seq <= ?"]
        values: list[Any] = [after, after + scan]
        for column, value in (("service_id", where.service_id), ("agent_id", where.agent_id),
                              ("name", where.name)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        if where.services is not None:
            clauses.append(f"service_id IN ({', '.join('?' * len(where.services))})")
            values += sorted(where.services)
        if where.since is not None:
            clauses.append("at >= ?")
            values.append(ts(where.since))
        if where.until is not None:
            clauses.append("at < ?")
            values.append(ts(where.until))
        rows = await self.uow.fetch(
            "SELECT * FROM (SELECT seq, at, name, task_id, session_id, agent_id, service_id,"
            f" data FROM events WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?)"
            " UNION ALL SELECT max(seq), NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM events",
            (*values, limit))
        *hits, (top, *_) = rows
        found = [self._event(r) for r in hits]
        if len(found) == limit:
            return Scan(found, found[-1].seq)
        if top is not None and top > after + scan:
            return Scan(found, after + scan)
        return Scan(found, None)


class SqliteTimers:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow: SqliteUnitOfWork = _back(uow)

    _COLUMNS = "kind, ref, due_at, lease_until, attempts, data, version"

    def _timer(self, row: sqlite3.Row) -> Timer:
        return Timer(kind=row[0], ref=row[1], due_at=from_ts(row[2]),
                     lease_until=from_ts(row[3]) if row[3] is not None else None,
                     attempts=row[4], data=json.loads(row[5]), version=row[6])

    async def get(self, timer_id: str) -> Timer | None:
        rows = await self.uow.fetch(f"SELECT {self._COLUMNS} FROM timers WHERE id = ?",
                                    (timer_id,))
        return self._timer(rows[0]) if rows else None

    async def arm(self, timer: Timer, *, now: datetime | None = None) -> None:
        params = (timer.id, timer.kind, timer.ref, ts(timer.due_at), json.dumps(timer.data))
        if now is None or timer.lease_until is None:
            self.uow.write(
                "INSERT INTO timers (id, version, kind, ref, due_at, lease_until, attempts, data)"
                " VALUES (?, 1, ?, ?, ?, NULL, 0, ?) ON CONFLICT (id) DO UPDATE SET"
                " due_at = excluded.due_at, attempts = 0,"
                " data = excluded.data, version = timers.version + 1", params)
            return

        asked = timer.lease_until

        def written(rows: list[sqlite3.Row]) -> None:
            timer.version, timer.attempts = rows[0]
            timer.lease_until = asked if timer.attempts == 1 else None  # 1: the lease taken

        # SET expressions see the row as it was: a lease someone holds at `now` stays.
        free = "(timers.lease_until IS NULL OR timers.lease_until <= ?)"
        self.uow.write(
            "INSERT INTO timers (id, version, kind, ref, due_at, lease_until, attempts, data)"
            " VALUES (?, 1, ?, ?, ?, ?, 1, ?) ON CONFLICT (id) DO UPDATE SET"
            f" due_at = excluded.due_at, attempts = CASE WHEN {free} THEN 1 ELSE 0 END,"
            f" lease_until = CASE WHEN {free} THEN excluded.lease_until"
            " ELSE timers.lease_until END,"
            " data = excluded.data, version = timers.version + 1"
            " RETURNING version, attempts",
            (*params[:4], ts(asked), params[4], ts(now), ts(now)),
            returning=True, done=written)

    async def cancel(self, timer_id: str) -> None:
        self.uow.write("DELETE FROM timers WHERE id = ?", (timer_id,))

    async def save(self, timer: Timer) -> None:
        self.uow.write(
            "UPDATE timers SET due_at = ?, lease_until = ?, attempts = ?, data = ?,"
            " version = version + 1 WHERE id = ? AND version = ?",
            (ts(timer.due_at), ts(timer.lease_until), timer.attempts, json.dumps(timer.data),
             timer.id, timer.version),
            conflict=f"timer {timer.id} changed since it was read")
        self.uow.versioned(timer, timer.version + 1)

    async def delete(self, timer: Timer) -> None:
        self.uow.write("DELETE FROM timers WHERE id = ? AND version = ?",
                       (timer.id, timer.version),
                       conflict=f"timer {timer.id} changed or fired elsewhere")

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
        self.uow: SqliteUnitOfWork = _back(uow)

    async def append(self, message: ChatMessage) -> None:
        """Held back: `message.seq` is set once it ran (by the next read or the commit)."""
        def numbered(rows: list[sqlite3.Row]) -> None:
            message.seq = int(rows[0][0])

        self.uow.write(
            "INSERT INTO messages (task_id, seq, sender, agent_id, at, text, kind, data)"
            " VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE task_id = ?),"
            " ?, ?, ?, ?, ?, ?) RETURNING seq",
            (message.task_id, message.task_id, message.sender.value, message.agent_id,
             ts(message.at), message.text, message.kind.value, json.dumps(message.data)),
            returning=True, done=numbered)

    async def after(self, task_id: str, seq: int, limit: int) -> list[ChatMessage]:
        rows = await self.uow.fetch(
            "SELECT task_id, seq, sender, agent_id, at, text, kind, data FROM messages"
            " WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?", (task_id, seq, limit))
        return [ChatMessage(task_id=r[0], seq=r[1], sender=Sender(r[2]), agent_id=r[3],
                            at=from_ts(r[4]), text=r[5], kind=Kind(r[6]), data=json.loads(r[7]))
                for r in rows]


class SqliteCounters:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow: SqliteUnitOfWork = _back(uow)

    async def next(self, name: str) -> int:
        rows = await self.uow.fetch(
            "INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name)"
            " DO UPDATE SET value = value + 1 RETURNING value", (name,))
        return int(rows[0][0])


class SqliteTags:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow: SqliteUnitOfWork = _back(uow)

    async def record(self, service_id: str, tags: Sequence[str], at: datetime) -> None:
        for tag in tags:
            self.uow.write(
                "INSERT INTO tags (service_id, tag_key, tag, uses, last_used)"
                " VALUES (?, ?, ?, 1, ?) ON CONFLICT (service_id, tag_key)"
                " DO UPDATE SET uses = uses + 1, last_used = excluded.last_used",
                (service_id, tag.lower(), tag, ts(at)))

    async def suggest(self, service_id: str, text: str, limit: int) -> list[str]:
        if not text:  # every tag matches, and as a prefix: the most used first (tags_top)
            rows = await self.uow.fetch(
                "SELECT tag FROM tags WHERE service_id = ?"
                " ORDER BY uses DESC, last_used DESC LIMIT ?", (service_id, limit))
            return [str(r[0]) for r in rows]
        pattern = "%" + _escape_like(text.lower()) + "%"
        rows = await self.uow.fetch(
            "SELECT tag FROM tags WHERE service_id = ? AND tag_key LIKE ? ESCAPE '\\'"
            " ORDER BY (tag_key LIKE ? ESCAPE '\\') DESC, uses DESC, last_used DESC LIMIT ?",
            (service_id, pattern, _escape_like(text.lower()) + "%", limit))
        return [str(r[0]) for r in rows]


class SqliteOutbox:
    def __init__(self, uow: SqliteUnitOfWork) -> None:
        self.uow: SqliteUnitOfWork = _back(uow)

    async def append(self, delivery: Delivery) -> None:
        """Held back: `delivery.seq` is set once it ran (by the next read or the commit)."""
        def numbered(rows: list[sqlite3.Row]) -> None:
            delivery.seq = int(rows[0][0])

        self.uow.versioned(delivery, 1)
        self.uow.write(
            "INSERT INTO outbox (task_id, seq, version, data) VALUES"
            " (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox WHERE task_id = ?), 1, ?)"
            " RETURNING seq", (delivery.task_id, delivery.task_id, _dump(delivery)),
            returning=True, done=numbered)

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
        self.uow.write(
            "UPDATE outbox SET version = ?, data = ? WHERE task_id = ? AND seq = ?"
            " AND version = ?", (delivery.version + 1, _dump(delivery), delivery.task_id,
                                 delivery.seq, delivery.version),
            conflict=f"outbox {delivery.task_id}/{delivery.seq} changed since read")
        self.uow.versioned(delivery, delivery.version + 1)

    async def delete(self, delivery: Delivery) -> None:
        self.uow.write(
            "DELETE FROM outbox WHERE task_id = ? AND seq = ? AND version = ?",
            (delivery.task_id, delivery.seq, delivery.version),
            conflict=f"outbox {delivery.task_id}/{delivery.seq} changed or gone")


async def open_sqlite(path: str | Path) -> SqliteStore:
    return await SqliteStore(path).open()


