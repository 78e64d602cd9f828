"""The SQLite change feed: what other processes on the same file committed, found cheaply."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from bot.storage.sqlite import SqliteStore

BATCH = 2_000  # rows read per poll at most; the rest on the next one
POLL_EVERY = 0.025  # seconds; a poll that finds nothing is one pragma on the reader


class SqliteChangeFeed:
    """Reads the `changes` table past a cursor, but only when `PRAGMA data_version` says
    another connection committed since the last poll: a poll that finds nothing new costs one
    pragma, whatever the number of open chats. Rows are numbered in commit order (writers take
    turns on the file), so a gap below the first new row means the table was pruned past the
    cursor: the feed lost track."""

    every = POLL_EVERY

    def __init__(self, store: SqliteStore, cursor: int, version: int | None) -> None:
        self.store = store
        self.cursor = cursor
        self.version = version

    @classmethod
    async def start(cls, store: SqliteStore) -> Self:
        async with store.read_only() as uow:
            version = int((await uow.fetch("PRAGMA data_version"))[0][0])
            # The last number handed out, even if its row was pruned since.
            rows = await uow.fetch("SELECT seq FROM sqlite_sequence WHERE name = 'changes'")
            cursor = int(rows[0][0]) if rows else 0
        return cls(store, cursor, version)

    async def poll(self) -> set[str] | None:
        async with self.store.read_only() as uow:
            version = int((await uow.fetch("PRAGMA data_version"))[0][0])
            if version == self.version:
                return set()
            rows = await uow.fetch(
                "SELECT seq, topic, origin FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                (self.cursor, BATCH))
        # Seen before the read: a commit after it changes the version again and is read next.
        self.version = version if len(rows) < BATCH else None
        if not rows:
            return set()
        lost = int(rows[0][0]) > self.cursor + 1
        self.cursor = int(rows[-1][0])
        if lost:
            return None
        return {str(topic) for _seq, topic, origin in rows if origin != self.store.origin}
