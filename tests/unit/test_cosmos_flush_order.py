"""The order a Cosmos DB commit writes in (bot/storage/cosmos_core.py `flush_order`)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain.message import ChatMessage, Sender
from bot.storage.cosmos_core import DocWrite, MessageWrite, flush_order


def doc(item_id: str, *, exists: bool = True, first: bool = False) -> DocWrite:
    return DocWrite("c", "pk", item_id, new={"id": item_id}, expect_exists=exists, first=first)


def upsert(item_id: str) -> DocWrite:
    return DocWrite("c", "pk", item_id, build=lambda current: {"id": item_id})


def message() -> MessageWrite:
    sent = ChatMessage(task_id="t1", sender=Sender.CUSTOMER, text="Hi",
                       at=datetime(2026, 11, 2, tzinfo=UTC))
    return MessageWrite(sent, "pk", lambda m: {"id": str(m.seq)})


def test_guards_then_writes_that_can_lose_then_new_items() -> None:
    new_session, saved_task, guard = doc("s1", exists=False), doc("t1"), doc("g", first=True)
    timer, saved_agent, chat = upsert("timer"), doc("a1"), message()
    order = flush_order([new_session, saved_task, timer, chat, saved_agent, guard])
    assert order == [guard, saved_task, saved_agent, new_session, timer, chat]


def test_writes_to_one_item_stay_together_in_their_order() -> None:
    added, saved_again = doc("s1", exists=False), doc("s1")
    other = doc("t1")
    assert flush_order([added, other, saved_again]) == [other, added, saved_again]
