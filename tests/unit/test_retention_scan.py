"""Retention covers everything about the customer: a scan of the whole SQLite file finds nothing.

Failing-first for issue 20: after a chat with a service that does not store context concluded,
the customer's chat lines were still in `messages` (and their bytes in the file).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.bootstrap import build_engine
from bot.domain.customer import Customer
from bot.domain.mail import InboundMail
from bot.services import chats, conversation, mail
from bot.services.engine import Engine
from bot.services.lifecycle import terminate, transfer
from bot.services.offers import accept
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.fakes import FakeClock
from tests.scenario import add_agent, advance, ringing, task_of_session


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    """The store, truncating its WAL after each deletion as soon as the next checkpoint
    comes (in production at most every 5 minutes): the scans below look at the file's bytes."""
    opened = await SqliteStore(db_path, scrub_every=0.0).open()
    yield opened
    await opened.close()

NAME, EMAIL, PHONE = "Zelda Quixotic", "zelda.quixotic@example.org", "+41 79 555 12 34"
CUSTOMER_WORDS = ("parrot", "swallowed", "marbles")
AGENT_WORDS = ("veterinarian", "immediately")
SECRETS = (NAME, EMAIL, PHONE, *CUSTOMER_WORDS, *AGENT_WORDS)


def services() -> object:
    return catalog(
        {"id": "drop", "acw": {"duration": "0s"}},
        {"id": "keep", "context": {"store_data": True}, "acw": {"duration": "0s"}},
    )


def found_in_tables(path: Path) -> set[str]:
    """Every secret that any column of any row of any table still holds."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        text = "\n".join(repr(row) for table in tables
                         for row in conn.execute(f'SELECT * FROM "{table}"'))
    finally:
        conn.close()
    return {s for s in SECRETS if s.lower() in text.lower()}


def found_in_bytes(path: Path) -> set[str]:
    """Every secret whose UTF-8 bytes are still anywhere in the database or its WAL."""
    raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    return {s for s in SECRETS if s.encode() in raw}


async def chat(engine: Engine, service: str, agent_id: str) -> str:
    opened = await engine.run(chats.open_chat, service,
                              Customer(name=NAME, email=EMAIL, phone=PHONE,
                                       params={"Plan": "gold"}),
                              "Hello, my parrot", "tok")
    task_id = opened.task.id
    [offer] = await ringing(engine, task_id)
    await engine.run(accept, offer.id, agent_id)
    await engine.run(conversation.customer_message, task_id, "it swallowed marbles")
    await engine.run(conversation.agent_message, offer.id, agent_id,
                     "see a veterinarian immediately")
    return offer.id


async def bytes_clean(path: Path, seconds: float = 5.0) -> set[str]:
    """The secrets still in the file's bytes once the store's checkpoint loop had its turn."""
    left = found_in_bytes(path)
    for _ in range(int(seconds / 0.1)):
        if not left:
            break
        await asyncio.sleep(0.1)
        left = found_in_bytes(path)
    return left


async def test_concluded_chat_without_opt_in_leaves_nothing_in_the_file(
        store: SqliteStore, clock: FakeClock, db_path: Path) -> None:
    engine = build_engine(store, clock, services())
    agent_id = await add_agent(engine, 1)
    session_id = await chat(engine, "drop", agent_id)
    assert found_in_tables(db_path) == set(SECRETS)  # the scan sees them while live

    await engine.run(terminate, session_id)

    assert found_in_tables(db_path) == set()
    assert await bytes_clean(db_path) == set()


async def test_opted_in_hop_keeps_its_data_until_the_purge(
        store: SqliteStore, clock: FakeClock, db_path: Path) -> None:
    engine = build_engine(store, clock, services())
    agent_id = await add_agent(engine, 1)
    await engine.run(terminate, await chat(engine, "keep", agent_id))

    assert found_in_tables(db_path) == set(SECRETS)
    await advance(engine, clock, 30 * 86400 - 1)
    assert found_in_tables(db_path) == set(SECRETS)
    await advance(engine, clock, 1)

    assert found_in_tables(db_path) == set()
    assert await bytes_clean(db_path) == set()


async def test_lines_of_a_hop_that_did_not_opt_in_go_when_no_later_hop_kept_them(
        store: SqliteStore, clock: FakeClock, db_path: Path) -> None:
    """keep -> drop: the record of `keep` holds the conversation up to its transfer; what was
    said in `drop` afterwards goes at the conclusion."""
    engine = build_engine(store, clock, services())
    first = await add_agent(engine, 1)
    await add_agent(engine, 2)
    in_keep = await chat(engine, "keep", first)
    task_id = (await task_of_session(engine, in_keep))
    await engine.run(transfer, in_keep, "drop")
    [offer] = await ringing(engine, task_id)
    await engine.run(accept, offer.id, offer.agent_id)
    await engine.run(conversation.customer_message, task_id, "ultramarine zeppelin")
    await engine.run(terminate, offer.id)

    conn = sqlite3.connect(db_path)
    try:
        texts = [r[0] for r in conn.execute(
            "SELECT text FROM messages WHERE task_id = ? AND kind = 'message' ORDER BY seq",
            (task_id,))]
    finally:
        conn.close()
    assert texts == ["Hello, my parrot", "it swallowed marbles", "see a veterinarian immediately"]


async def test_a_concluded_email_without_opt_in_leaves_nothing_in_the_file(
        store: SqliteStore, clock: FakeClock, db_path: Path) -> None:
    """Subject, body, HTML and sender of an email task go at the conclusion too."""
    engine = build_engine(store, clock, catalog(
        {"id": "drop", "acw": {"duration": "0s"}, "email": "drop@example.com"}))
    agent_id = await add_agent(engine, 1)
    received = await engine.run(mail.receive_mail, InboundMail(
        sender=EMAIL, sender_name=NAME, to=("drop@example.com",),
        subject="My parrot swallowed marbles", text=f"Call me on {PHONE}, it swallowed marbles",
        html="<p>my <b>parrot</b> swallowed marbles</p>", message_id="<m1@example.org>"),
        [("drop", "drop@example.com")])
    [task_id] = received.task_ids
    [offer] = await ringing(engine, task_id)
    await engine.run(accept, offer.id, agent_id)
    assert {NAME, EMAIL, PHONE, *CUSTOMER_WORDS} <= found_in_tables(db_path)

    await engine.run(mail.mark_handled, offer.id, agent_id)

    assert found_in_tables(db_path) == set()
    assert await bytes_clean(db_path) == set()


async def test_a_line_relayed_during_acw_removes_nothing_before_the_conclusion(
        store: SqliteStore, clock: FakeClock, db_path: Path) -> None:
    """The relay catching up after Terminate, while the task is still in after-call work,
    must not take the conversation: what goes is decided at the conclusion, per hop."""
    engine = build_engine(store, clock, catalog(
        {"id": "keep", "context": {"store_data": True}, "acw": {"duration": "60s"}}))
    agent_id = await add_agent(engine, 1)
    session_id = await chat(engine, "keep", agent_id)
    await engine.run(terminate, session_id)  # after-call work: the task is in wrap-up
    await engine.run(conversation.relayed, session_id, 2)
    assert found_in_tables(db_path) == set(SECRETS)
    await advance(engine, clock, 60)  # ACW ends: concluded, the opted-in hop keeps it all
    assert found_in_tables(db_path) == set(SECRETS)
