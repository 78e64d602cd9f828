"""The order a Cosmos DB commit writes in (bot/storage/cosmos_core.py `flush_order`) and the
transactional batches it writes them as (`flush_groups`: one per logical partition)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.domain.message import ChatMessage, Sender
from bot.storage.cosmos_writes import (
    DocWrite,
    MessageWrite,
    flush_groups,
    flush_order,
)


def doc(item_id: str, *, exists: bool = True, first: bool = False, pk: str = "pk",
        container: str = "c") -> DocWrite:
    return DocWrite(container, pk, item_id, new={"id": item_id}, expect_exists=exists,
                    first=first)


def upsert(item_id: str, pk: str = "pk") -> DocWrite:
    return DocWrite("c", pk, item_id, build=lambda current: {"id": item_id})


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


def test_one_batch_per_partition_and_step_timers_after_other_new_items() -> None:
    guard = doc("g", first=True, pk="guard|dispatch|sales", container="meta")
    task = doc("t1", pk="t1", container="tasks")
    agent_1, agent_2 = doc("a1", pk="agents"), doc("a2", pk="agents")
    session = doc("s1", exists=False, pk="s1", container="sessions")
    claimed, armed = doc("ring:s0", pk="timers", container="timers"), upsert("acw:s1")
    armed.container, armed.pk = "timers", "timers"
    chat_1, chat_2 = message(), message()
    groups = flush_groups(flush_order(
        [claimed, task, agent_1, armed, session, chat_1, agent_2, chat_2, guard]))
    # The claim of a timer stays where the use case made it (it decides); the timer armed is
    # one more new item, written after the session it is about.
    assert groups == [[guard], [claimed], [task], [agent_1, agent_2], [session],
                      [chat_1, chat_2], [armed]]


def test_an_item_written_twice_stays_in_the_step_of_its_first_write() -> None:
    added, saved = doc("s1", exists=False, pk="x"), doc("s1", pk="x")
    other_new, replaced = doc("s2", exists=False, pk="x"), doc("t1", pk="y")
    assert flush_groups(flush_order([added, replaced, saved, other_new])) == [
        [replaced], [added, saved, other_new]]
