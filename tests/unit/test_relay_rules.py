"""The relay rules of bot/services/conversation.py, without Teams or a store: the header first,
then the customer's lines; after Terminate only what was written before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.message import ChatMessage, Sender
from bot.domain.service import Modality
from bot.domain.session import Phase, Session
from bot.services.conversation import relay_from, relay_step

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def session(**changes: object) -> Session:
    base = Session(id="s1", task_id="t1", agent_id="a1", service_id="sales",
                   modality=Modality.IM, offered_at=T0, queued_at=T0, ring_until=T0,
                   phase=Phase.CONNECTED, chat_id="19:chat")
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def line(seq: int, sender: Sender, minutes: int) -> ChatMessage:
    return ChatMessage(task_id="t1", sender=sender, text=f"line {seq}",
                       at=T0 + timedelta(minutes=minutes), seq=seq)


ROWS = [line(1, Sender.CUSTOMER, 1), line(2, Sender.AGENT, 2), line(3, Sender.CUSTOMER, 3)]


def test_the_header_goes_first_with_the_whole_transcript() -> None:
    fresh = session(relayed_seq=2)
    assert relay_from(fresh) == 0
    step = relay_step(fresh, ROWS)
    assert step is not None and step.header and step.messages == ROWS and step.through == 3


def test_after_the_header_only_the_customers_lines_since_the_cursor() -> None:
    live = session(header_posted=True, relayed_seq=1)
    assert relay_from(live) == 1
    step = relay_step(live, ROWS[1:])
    assert step is not None and not step.header
    assert [m.seq for m in step.messages] == [3] and step.through == 3


def test_after_terminate_only_lines_written_before_it_go_out() -> None:
    ended = session(header_posted=True, phase=Phase.ACW, terminated_at=T0 + timedelta(minutes=2))
    step = relay_step(ended, ROWS)
    assert step is not None and [m.seq for m in step.messages] == [1]
    assert relay_step(ended, ROWS[2:]) is None  # written after Terminate


def test_an_ended_session_without_a_header_gets_nothing() -> None:
    ended = session(phase=Phase.ACW, terminated_at=T0 + timedelta(minutes=5))
    assert relay_step(ended, ROWS) is None
    assert relay_step(session(phase=Phase.ACW, header_posted=True), ROWS) is None  # no cut-off
