"""The fleet registry and shared send logs on SQLite (several processes on one file)."""

from __future__ import annotations

import json

from bot.services.fleet import SendLog
from bot.services.ports import ConflictError
from bot.storage.sqlite import SqliteStore

# Rows of instances gone this long, and send logs untouched this long, are removed.
FORGET_AFTER = 7200.0


class SqliteFleet:
    """`bot.services.fleet.FleetStore` on the app's SQLite file. Each call is a transaction
    of its own on the store's write connection; a send log is written only if its version is
    still the one read, so two processes reserving in one conversation never both win."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    async def heartbeat(self, instance_id: str, now: float, live_for: float) -> list[str]:
        async with self.store.unit_of_work() as uow:
            uow.write("INSERT INTO fleet_instances (id, seen) VALUES (?, ?) "
                      "ON CONFLICT (id) DO UPDATE SET seen = excluded.seen", (instance_id, now))
            uow.write("DELETE FROM fleet_instances WHERE seen < ?", (now - FORGET_AFTER,))
            uow.write("DELETE FROM fleet_sendlog WHERE updated < ?", (now - FORGET_AFTER,))
            rows = await uow.fetch("SELECT id FROM fleet_instances WHERE seen > ? ORDER BY id",
                                   (now - live_for,))
            await uow.commit()
        return [str(row[0]) for row in rows]

    async def leave(self, instance_id: str) -> None:
        async with self.store.unit_of_work() as uow:
            uow.write("DELETE FROM fleet_instances WHERE id = ?", (instance_id,))
            await uow.commit()

    async def read_sendlog(self, key: str) -> SendLog | None:
        async with self.store.read_only() as uow:
            rows = await uow.fetch(
                "SELECT version, data FROM fleet_sendlog WHERE conversation = ?", (key,))
        if not rows:
            return None
        data = json.loads(rows[0][1])
        return SendLog(times=[float(t) for t in data.get("t", [])],
                       buckets=[[float(b), float(n)] for b, n in data.get("b", [])],
                       version=int(rows[0][0]))

    async def write_sendlog(self, key: str, log: SendLog, now: float) -> bool:
        data = json.dumps({"t": log.times, "b": log.buckets}, separators=(",", ":"))
        try:
            async with self.store.unit_of_work() as uow:
                if log.version == 0:
                    uow.write("INSERT INTO fleet_sendlog (conversation, version, updated, data) "
                              "VALUES (?, 1, ?, ?)", (key, now, data))
                else:
                    uow.write("UPDATE fleet_sendlog SET version = ?, updated = ?, data = ? "
                              "WHERE conversation = ? AND version = ?",
                              (log.version + 1, now, data, key, log.version),
                              conflict="send log changed since it was read")
                await uow.commit()
        except ConflictError:
            return False
        log.version += 1
        return True
