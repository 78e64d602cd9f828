"""The WAL truncation after a deletion: when a reader stands in the way it is tried again at the
next checkpoint, not only after the next `scrub_every`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.storage.sqlite import SqliteStore


async def test_a_busy_truncation_is_tried_again_at_the_next_checkpoint(tmp_path: Path) -> None:
    db = tmp_path / "sb.db"
    store = await SqliteStore(db, scrub_every=300.0).open()
    try:
        wal = Path(f"{db}-wal")
        reader = sqlite3.connect(db)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM sqlite_master").fetchall()  # holds a snapshot
        await store.conn.execute("CREATE TABLE IF NOT EXISTS scratch (x)")
        await store.conn.commit()
        store.scrub_requested = True
        await store.checkpoint()  # the reader stands in the way: busy
        assert store.scrub_requested and wal.stat().st_size > 0
        reader.rollback()
        reader.close()
        await store.checkpoint()  # the next checkpoint, well within scrub_every
        assert not store.scrub_requested
        assert wal.stat().st_size == 0
    finally:
        await store.close()
