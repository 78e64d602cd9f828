"""What the APIs acknowledge survives power loss: the WAL is fsynced (grouped) before the
answer, and the database file is private to its owner."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from bot.app import STORE
from bot.storage.sqlite import SqliteStore
from bot.storage.sqlite_durability import WalSync
from tests.builders import catalog
from tests.support.world import running_world


async def test_the_database_and_its_wal_are_created_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "sb.db"
    store = await SqliteStore(path).open()
    try:
        async with store.unit_of_work() as uow:
            await uow.counters.next("x")
            await uow.commit()
        for name in (path, Path(f"{path}-wal")):
            assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name
    finally:
        await store.close()


async def test_syncs_asked_for_together_share_one_fsync(tmp_path: Path) -> None:
    wal = tmp_path / "x.db-wal"
    wal.write_bytes(b"frames")
    syncer = WalSync(wal)
    await asyncio.gather(*(syncer.sync() for _ in range(50)))
    # The first starts an fsync at once; everyone who asked meanwhile shares the next one.
    assert 1 <= syncer.fsyncs <= 2
    await syncer.sync()
    assert syncer.fsyncs <= 3  # a later ask always gets an fsync of its own, after its commit


async def test_a_sync_asked_for_during_an_fsync_waits_for_the_next(tmp_path: Path) -> None:
    wal = tmp_path / "x.db-wal"
    wal.write_bytes(b"frames")
    syncer = WalSync(wal)
    first = asyncio.create_task(syncer.sync())
    await asyncio.sleep(0)  # the first fsync has started
    second = asyncio.create_task(syncer.sync())
    await asyncio.gather(first, second)
    assert syncer.fsyncs == 2  # the second's commit may have missed the first fsync


async def test_an_accepted_chat_and_chat_line_are_fsynced_before_the_answer(
        tmp_path: Path) -> None:
    async with running_world(catalog({"id": "sales"}), tmp_path) as world:
        store = world.app[STORE]
        assert isinstance(store, SqliteStore) and store._durable is not None
        before = store._durable.fsyncs
        async with world.client.post(world.server.make_url("/api/interact/v1/chats"),
                                     json={"service": "sales", "text": "hi"}) as reply:
            assert reply.status == 201
            chat = await reply.json()
        assert store._durable.fsyncs > before
        before = store._durable.fsyncs
        async with world.client.post(
                world.server.make_url(f"/api/interact/v1/chats/{chat['chat_id']}/messages"),
                json={"text": "still there?"},
                headers={"Authorization": f"Bearer {chat['token']}"}) as reply:
            assert reply.status == 202
        assert store._durable.fsyncs > before
