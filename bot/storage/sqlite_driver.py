"""How statements reach SQLite: the write lanes, batches of held-back writes, which unit of
work's transaction is open, the translation of SQLite's errors, and the ping."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import aiosqlite

from bot.services.ports import ConflictError, StoreUnavailable

R = TypeVar("R")

PATIENCE = 0.9  # waiting this share of the busy timeout for a lock: someone holds it


def ts(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def from_ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def translate(exc: sqlite3.Error, waited: float = 0.0, patience: float = 1.0) -> Exception:
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


class Write:
    """A statement held back until the unit of work next talks to the database."""

    __slots__ = ("conflict", "done", "params", "returning", "sql")

    def __init__(self, sql: str, params: Sequence[Any], conflict: str | None,
                 returning: bool, done: Callable[[Any], None] | None) -> None:
        self.sql, self.params, self.conflict = sql, params, conflict
        self.returning, self.done = returning, done

    def __repr__(self) -> str:  # aiosqlite logs what it runs at DEBUG: never the parameters
        return f"<write {self.sql.split(' ', 3)[:3]}>"


class Txn:
    """Which unit of work's transaction is open on a connection. Read and changed on the
    connection's own thread only, so a late ROLLBACK can never end a newer transaction."""

    __slots__ = ("owner",)

    def __init__(self) -> None:
        self.owner: object | None = None


FETCH, EXECUTE, COMMIT = "fetch", "execute", "commit"
# Another connection holds the lock (or the WAL is being recovered): SQLite's busy handler

# may wait for it. Not SQLITE_BUSY_SNAPSHOT (517): our snapshot is outdated, no wait helps.
_HELD_ELSEWHERE = frozenset({5, 261, 773})  # SQLITE_BUSY, _BUSY_RECOVERY, _BUSY_TIMEOUT


class _MustWait(Exception):
    """A statement found a lock held elsewhere, on a thread that must not wait for it."""


class Batch:
    """One hop, on the event loop's thread or the connection's (`Lane`): BEGIN if due, the
    held-back writes in order (stopping at the first that fails or finds its row changed), then
    one read, statement or COMMIT."""

    __slots__ = ("_before", "_begun", "_done", "_finished", "_state", "_waiter", "begin",
                 "busy_timeout_ms", "error", "final", "outcome", "owner", "params", "ran", "sql",
                 "txn", "writes")

    def __init__(self, txn: Txn, owner: object, begin: bool, writes: list[Write],
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
        self.ran = threading.Lock()  # held until the batch ran (SqliteUnitOfWork._receive)
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
            if self.final == FETCH:
                result = self._execute(db, self.sql, self.params, patient).fetchall()
            elif self.final == EXECUTE:
                result = self._execute(db, self.sql, self.params, patient)
            elif self.final == COMMIT:
                self._execute(db, "COMMIT", (), patient)
                self.txn.owner = None
            return self._done, result, db.total_changes != self._before
        except sqlite3.Error as exc:
            raise translate(exc, time.monotonic() - started,
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


def end_txn(txn: Txn, owner: object, db: sqlite3.Connection) -> None:
    if txn.owner is owner:
        txn.owner = None
        if db.in_transaction:
            db.execute("ROLLBACK")


def take_write_lock(txn: Txn, db: sqlite3.Connection) -> None:
    """The ping: take the write lock briefly (waiting at most 250 ms) and let it go."""
    try:
        txn.owner = None
        if db.in_transaction:  # a finished unit of work's ROLLBACK is still queued
            db.execute("ROLLBACK")
        db.execute("PRAGMA busy_timeout = 250")
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
    finally:
        db.execute("PRAGMA busy_timeout = 0")  # see Batch._execute


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # its caller may have been cancelled meanwhile
        waiter.set_result(None)


class Lane:
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
            if isinstance(fn, Batch):
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


class Statements(Protocol):
    """What a repository sees of its unit of work (`bot.storage.sqlite.SqliteUnitOfWork`)."""

    # The entities this unit of work has decoded, by (table, id): one object per row.
    identity: dict[tuple[str, str], Any]
    # Rows read ahead, not decoded yet: (table, id) -> (id, version, data).
    read_ahead: dict[tuple[str, str], Sequence[Any]]

    def write(self, sql: str, params: Sequence[Any] = (), *, conflict: str | None = None,
              returning: bool = False, done: Callable[[Any], None] | None = None) -> None: ...

    def versioned(self, entity: Any, version: int) -> None: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor: ...

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]: ...

    def scrub(self) -> None: ...
