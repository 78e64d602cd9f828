"""Power-loss durability for the commits a caller is about to acknowledge, fsyncs grouped."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from bot.services.ports import StoreUnavailable


def create_private(path: Path) -> None:
    """Create the database file readable and writable by its owner only (SQLite gives its
    -wal and -shm files the same mode), and make its directory entry durable."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class WalSync:
    """With `synchronous = NORMAL` a WAL commit is safe from a crash of the process but not of
    the machine until the WAL is fsynced (at the next checkpoint). `sync()` returns once every
    commit made before it was called is on disk: one fsync of the WAL file, in a thread, shared
    by every caller that asked while none had started (group commit), so acknowledgements cost
    one fsync per burst rather than one per commit."""

    def __init__(self, wal_path: Path) -> None:
        self.wal_path = wal_path
        self._next: asyncio.Future[None] | None = None  # the fsync to start next, and who waits
        self._running = False
        self.fsyncs = 0

    async def sync(self) -> None:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            if not self._running:
                self._running = True
                asyncio.get_running_loop().create_task(self._run())
        await asyncio.shield(self._next)

    async def _run(self) -> None:
        try:
            while self._next is not None:
                batch, self._next = self._next, None
                try:
                    await asyncio.to_thread(self._fsync)
                except OSError as exc:
                    batch.set_exception(StoreUnavailable(f"cannot make the commit durable: {exc}"))
                else:
                    batch.set_result(None)
        finally:
            self._running = False

    def _fsync(self) -> None:
        self.fsyncs += 1
        try:
            fd = os.open(self.wal_path, os.O_RDONLY)
        except FileNotFoundError:
            return  # no WAL (nothing written since the last connection closed): all in the file
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
