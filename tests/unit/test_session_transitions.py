"""The session's state machine without storage: every legal phase change, the illegal refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.errors import Invalid, InvalidTransition, Refused
from bot.domain.service import Codes, Modality
from bot.domain.session import MAX_TAGS, OFFER_ENDINGS, Phase, Session, SessionResult

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
RING = timedelta(seconds=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ringing(*, awaits_delivery: bool = False) -> Session:
    return Session(id="s1", task_id="t1", agent_id="a1", service_id="sales",
                   modality=Modality.IM, offered_at=at(0), queued_at=at(-5),
                   ring_until=at(0) + RING, awaits_delivery=awaits_delivery)


def connected() -> Session:
    session = ringing()
    session.accept(at(10))
    return session


def in_acw(acw: float = 60) -> Session:
    session = connected()
    session.terminate(at(100), timedelta(seconds=acw))
    return session


def ended() -> Session:
    session = connected()
    session.terminate(at(100), None)
    return session


def offer_ended() -> Session:
    session = ringing()
    session.end_offer(at(5), SessionResult.RONA)
    return session


ALL = {"ringing": ringing, "connected": connected, "acw": in_acw, "ended": ended,
       "offer_ended": offer_ended}


def others(*allowed: str) -> list[str]:
    return [name for name in ALL if name not in allowed]


def test_accept_connects_and_answers_at_once() -> None:
    session = ringing()
    session.accept(at(10))
    assert (session.phase, session.result) == (Phase.CONNECTED, SessionResult.ACCEPTED)
    assert session.answered_at == session.connected_at == at(10)
    assert session.ring_time() == timedelta(seconds=10)
    assert session.live and session.is_open


@pytest.mark.parametrize("start", others("ringing"))
def test_only_a_ringing_offer_is_accepted(start: str) -> None:
    session = ALL[start]()
    before = (session.phase, session.result, session.answered_at)
    with pytest.raises(InvalidTransition):
        session.accept(at(200))
    assert (session.phase, session.result, session.answered_at) == before


@pytest.mark.parametrize("result", sorted(OFFER_ENDINGS))
def test_an_offer_ends_unanswered_except_a_decline(result: SessionResult) -> None:
    session = ringing()
    session.end_offer(at(7), result, "why")
    assert (session.phase, session.result, session.note) == (Phase.ENDED, result, "why")
    assert session.answered_at == (at(7) if result is SessionResult.DECLINED else None)
    assert not session.live


def test_ending_an_offer_without_a_note_keeps_the_one_it_had() -> None:
    session = ringing()
    session.note = "earlier"
    session.end_offer(at(7), SessionResult.MISSED)
    assert session.note == "earlier"


@pytest.mark.parametrize("result", [SessionResult.ACCEPTED, SessionResult.FAILED])
def test_an_offer_does_not_end_as_accepted_or_failed(result: SessionResult) -> None:
    session = ringing()
    with pytest.raises(InvalidTransition):
        session.end_offer(at(7), result)
    assert session.phase is Phase.RINGING and session.result is None


@pytest.mark.parametrize("start", others("ringing"))
def test_only_a_ringing_offer_ends_as_an_offer(start: str) -> None:
    with pytest.raises(InvalidTransition):
        ALL[start]().end_offer(at(200), SessionResult.CANCELLED)


def test_a_delivered_card_starts_the_full_ring() -> None:
    session = ringing(awaits_delivery=True)
    assert session.awaits_card
    session.card_delivered(at(4))
    assert session.delivered_at == at(4)
    assert session.ring_until == at(4) + RING
    assert not session.awaits_card
    with pytest.raises(InvalidTransition):
        session.card_delivered(at(5))  # once


def test_a_card_counts_only_while_it_is_awaited() -> None:
    assert not ringing().awaits_card  # no Teams card: rings from the offer
    late = ringing(awaits_delivery=True)
    late.end_offer(at(3), SessionResult.CANCELLED)
    assert not late.awaits_card
    with pytest.raises(InvalidTransition):
        late.card_delivered(at(4))


def test_terminate_with_acw_starts_after_call_work() -> None:
    session = connected()
    session.terminate(at(100), timedelta(seconds=60), note="swept")
    assert session.phase is Phase.ACW
    assert (session.terminated_at, session.acw_until) == (at(100), at(160))
    assert session.acw_ended_at is None and session.note == "swept"
    assert session.connected_time() == timedelta(seconds=90)


def test_terminate_without_acw_ends_at_once() -> None:
    session = connected()
    session.terminate(at(100), None, transferred_to="support")
    assert session.phase is Phase.ENDED
    assert session.terminated_at == session.acw_ended_at == at(100)
    assert session.acw_time() == timedelta(0) and session.transferred_to == "support"
    assert session.result is SessionResult.ACCEPTED  # the hop was answered


@pytest.mark.parametrize("start", others("connected"))
def test_only_a_connected_session_is_terminated(start: str) -> None:
    session = ALL[start]()
    with pytest.raises(InvalidTransition):
        session.terminate(at(200), None)
    assert session.terminated_at in (None, at(100))


def test_acw_ends() -> None:
    session = in_acw()
    session.end_acw(at(130))
    assert (session.phase, session.acw_ended_at) == (Phase.ENDED, at(130))
    assert session.acw_time() == timedelta(seconds=30)


@pytest.mark.parametrize("start", others("acw"))
def test_only_acw_ends_as_acw(start: str) -> None:
    with pytest.raises(InvalidTransition):
        ALL[start]().end_acw(at(200))


def test_acw_extends_once_from_the_time_left() -> None:
    session = in_acw(60)
    session.extend_acw(at(120), timedelta(seconds=30))
    assert session.acw_until == at(190) and session.acw_extended
    with pytest.raises(Refused, match="already extended"):
        session.extend_acw(at(121), timedelta(seconds=30))
    assert session.acw_until == at(190)


def test_an_overdue_acw_extends_from_now() -> None:
    session = in_acw(60)
    session.extend_acw(at(170), timedelta(seconds=30))
    assert session.acw_until == at(200)


@pytest.mark.parametrize("start", others("acw"))
def test_only_acw_extends(start: str) -> None:
    with pytest.raises(InvalidTransition):
        ALL[start]().extend_acw(at(200), timedelta(seconds=30))


def test_a_chat_opens_once_on_a_connected_session() -> None:
    session = connected()
    session.open_chat("19:chat", "https://teams/x")
    assert (session.chat_id, session.chat_url) == ("19:chat", "https://teams/x")
    with pytest.raises(InvalidTransition):
        session.open_chat("19:other", None)
    for start in others("connected"):
        with pytest.raises(InvalidTransition):
            ALL[start]().open_chat("19:chat", None)


def test_a_failed_chat_ends_the_connection_as_failed() -> None:
    session = connected()
    session.fail_chat(at(12), "no chat")
    assert (session.phase, session.result, session.note) == (
        Phase.ENDED, SessionResult.FAILED, "no chat")
    assert session.terminated_at == at(12) and session.acw_ended_at is None


def test_a_chat_that_exists_or_a_session_not_connected_does_not_fail() -> None:
    opened = connected()
    opened.open_chat("19:chat", None)
    for session in (opened, *(ALL[start]() for start in others("connected"))):
        with pytest.raises(InvalidTransition):
            session.fail_chat(at(12), "no chat")


def test_the_record_is_decided_once() -> None:
    session = ended()
    session.keep_record(True, 7)
    assert (session.store_context, session.kept_through) == (True, 7)
    with pytest.raises(InvalidTransition):
        session.keep_record(False, 0)
    assert (session.store_context, session.kept_through) == (True, 7)


CODES = Codes(primary=("Sale", "No sale"), secondary=("Follow-up",))


@pytest.mark.parametrize("start", others("ringing"))
def test_wrapup_saves_once_from_accept_on(start: str) -> None:
    session = ALL[start]()
    session.save_wrapup(at(300), CODES, " Sale ", "", [" vip ", "VIP", "", "a  b"])
    assert (session.primary_code, session.secondary_code) == ("Sale", None)
    assert session.tags == ["vip", "a b"] and session.saved_at == at(300)
    assert not session.is_open
    with pytest.raises(Refused) as again:
        session.save_wrapup(at(301), CODES, "No sale", None, [])
    assert again.value.code == "saved" and session.primary_code == "Sale"


def test_wrapup_waits_for_accept() -> None:
    with pytest.raises(Refused, match="Accept the task"):
        ringing().save_wrapup(at(3), CODES, "Sale", None, [])


@pytest.mark.parametrize(("primary", "secondary", "tags", "field"), [
    (None, None, [], "primary_code"),  # required when the service has codes
    ("Refund", None, [], "primary_code"),
    ("Sale", "Call back", [], "secondary_code"),
    ("Sale", None, ["x" * 51], "tags"),
    ("Sale", None, [f"t{i}" for i in range(MAX_TAGS + 1)], "tags"),
])
def test_invalid_wrapup_changes_nothing(primary: str | None, secondary: str | None,
                                        tags: list[str], field: str) -> None:
    session = connected()
    with pytest.raises(Invalid) as refused:
        session.save_wrapup(at(300), CODES, primary, secondary, tags)
    assert refused.value.field == field
    assert session.saved_at is None and session.primary_code is None and session.tags == []


def test_a_service_without_codes_saves_tags_alone() -> None:
    session = connected()
    session.save_wrapup(at(300), Codes(), None, None, ["vip"])
    assert session.primary_code is None and session.tags == ["vip"]


def test_the_relay_cursor_only_moves_forward() -> None:
    session = connected()
    session.header_in_chat(4)
    assert session.header_posted and session.relayed_seq == 4
    assert not session.relayed_through(3) and not session.relayed_through(4)
    assert session.relayed_through(6) and session.relayed_seq == 6
    session.header_in_chat(2)  # a header posted again never moves the cursor back
    assert session.relayed_seq == 6
