"""The WAL truncation after a deletion: when a reader stands in the way it is tried again after
`scrub_retry`, not only after the next `scrub_every`, and not at every checkpoint either."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.storage.sqlite import SqliteStore


async def hold_a_snapshot(db: Path, store: SqliteStore) -> sqlite3.Connection:
    reader = sqlite3.connect(db)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM sqlite_master").fetchall()  # holds a snapshot
    await store.conn.execute("CREATE TABLE IF NOT EXISTS scratch (x)")
    await store.conn.commit()
    return reader


@asynccontextmanager
async def after_a_busy_truncation(tmp_path: Path,
                                  scrub_retry: float) -> AsyncIterator[tuple[SqliteStore, Path]]:
    """A store (and its WAL) whose truncation a reader held up, that reader gone since."""
    db = tmp_path / "sb.db"
    store = await SqliteStore(db, scrub_every=300.0, scrub_retry=scrub_retry).open()
    try:
        wal = Path(f"{db}-wal")
        reader = await hold_a_snapshot(db, store)
        store.scrub_requested = True
        await store.checkpoint()  # the reader stands in the way: busy
        assert store.scrub_requested and wal.stat().st_size > 0
        reader.rollback()
        reader.close()
        yield store, wal
    finally:
        await store.close()


async def test_a_busy_truncation_is_tried_again_after_the_retry_time(tmp_path: Path) -> None:
    async with after_a_busy_truncation(tmp_path, scrub_retry=0.0) as (store, wal):
        await store.checkpoint()  # the next checkpoint, well within scrub_every
        assert not store.scrub_requested
        assert wal.stat().st_size == 0


async def test_a_busy_truncation_is_not_tried_at_every_checkpoint(tmp_path: Path) -> None:
    """Each attempt takes the write lock for a moment: under load, at every checkpoint (once a
    second) it would hold the writers up again and again."""
    async with after_a_busy_truncation(tmp_path, scrub_retry=60.0) as (store, wal):
        await store.checkpoint()  # within scrub_retry: the WAL is copied, not truncated
        assert store.scrub_requested and wal.stat().st_size > 0
