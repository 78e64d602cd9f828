"""The store's change feed on both backends: one instance learns what another committed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.bootstrap import build_engine
from bot.domain.message import ChatMessage, Sender
from bot.services.context import Ctx
from bot.services.engine import Engine
from bot.services.ports import ChangeFeed, Store
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.contract.conftest import Backend
from tests.fakes import FakeClock


async def new_chat_rows(ctx: Ctx, *chat_ids: str) -> None:
    """What every use case that gives a conversation new rows does: append, mark it touched."""
    for chat_id in chat_ids:
        await ctx.uow.messages.append(ChatMessage(task_id=chat_id, sender=Sender.CUSTOMER,
                                                  text="hello", at=ctx.now))
        ctx.touched.add(chat_id)


def engine_on(store: Store) -> Engine:
    return build_engine(store, FakeClock(), catalog())


async def poll_until(feed: ChangeFeed, wanted: set[str], polls: int = 20) -> set[str]:
    """Everything the feed reports over a few polls (the real Cosmos feed may split pages)."""
    seen: set[str] = set()
    for _ in range(polls):
        topics = await feed.poll()
        assert topics is not None, "the feed lost track"
        seen |= topics
        if wanted <= seen:
            break
    return seen


async def test_a_commit_on_one_instance_reaches_the_feed_of_another(backend: Backend) -> None:
    one, two = await backend.open(), await backend.open()
    try:
        feed = await two.changes()
        assert await feed.poll() == set()
        await engine_on(one).run(new_chat_rows, "chat-a", "chat-b")
        assert await poll_until(feed, {"chat-a", "chat-b"}) >= {"chat-a", "chat-b"}
        assert await feed.poll() == set()  # each change once
        await engine_on(one).run(new_chat_rows, "chat-c")
        assert "chat-c" in await poll_until(feed, {"chat-c"})
    finally:
        await backend.close()


async def test_sqlite_writes_a_commits_topics_in_few_statements_and_all_arrive(
        tmp_path: Path) -> None:
    topics = {f"chat-{n}" for n in range(450)}  # more than one INSERT carries
    one = await SqliteStore(tmp_path / "sb.db").open()
    two = await SqliteStore(tmp_path / "sb.db").open()
    try:
        feed = await two.changes()
        async with one.unit_of_work() as uow:
            uow.announce(topics)
            await uow.commit()
        # BEGIN, three INSERTs of at most 200 rows each, COMMIT: not a statement a topic.
        assert uow.statements == 5
        assert await poll_until(feed, topics) == topics
    finally:
        await one.close()
        await two.close()


async def test_a_feed_starts_now(backend: Backend) -> None:
    one, two = await backend.open(), await backend.open()
    try:
        await engine_on(one).run(new_chat_rows, "before")
        feed = await two.changes()
        await engine_on(one).run(new_chat_rows, "after")
        assert "before" not in await poll_until(feed, {"after"})
    finally:
        await backend.close()


async def test_a_unit_of_work_that_fails_announces_nothing(backend: Backend) -> None:
    one, two = await backend.open(), await backend.open()
    try:
        feed = await two.changes()

        async def fails(ctx: Ctx) -> None:
            await new_chat_rows(ctx, "never")
            raise RuntimeError("refused")

        with pytest.raises(RuntimeError):
            await engine_on(one).run(fails)
        await engine_on(one).run(new_chat_rows, "later")
        assert "never" not in await poll_until(feed, {"later"})
    finally:
        await backend.close()


async def test_sqlite_feed_leaves_out_its_own_commits(tmp_path: Path) -> None:
    """Its own commits woke its chats at once (Engine listeners): no second wake-up."""
    one = await SqliteStore(tmp_path / "sb.db").open()
    two = await SqliteStore(tmp_path / "sb.db").open()
    try:
        mine, theirs = await one.changes(), await two.changes()
        await engine_on(one).run(new_chat_rows, "chat-a")
        assert await mine.poll() == set()
        assert await theirs.poll() == {"chat-a"}
    finally:
        await one.close()
        await two.close()


async def test_sqlite_feed_that_fell_behind_the_pruning_says_it_lost_track(
        tmp_path: Path) -> None:
    writer = await SqliteStore(tmp_path / "sb.db", changes_kept=3, prune_every=2).open()
    reader = await SqliteStore(tmp_path / "sb.db").open()
    try:
        feed = await reader.changes()
        for n in range(8):
            await engine_on(writer).run(new_chat_rows, f"chat-{n}")
        assert await feed.poll() is None
        await engine_on(writer).run(new_chat_rows, "next")
        assert await feed.poll() == {"next"}  # and follows again from there
    finally:
        await writer.close()
        await reader.close()


async def test_sqlite_feed_reads_a_long_backlog_in_batches(tmp_path: Path) -> None:
    writer = await SqliteStore(tmp_path / "sb.db").open()
    reader = await SqliteStore(tmp_path / "sb.db").open()
    try:
        feed = await reader.changes()
        chats = {f"chat-{n}" for n in range(2_500)}
        await engine_on(writer).run(new_chat_rows, *sorted(chats))
        first = await feed.poll()
        assert first is not None and 0 < len(first) < len(chats)
        second = await feed.poll()  # no new commit since, yet the rest comes
        assert second is not None and first | second == chats
    finally:
        await writer.close()
        await reader.close()
