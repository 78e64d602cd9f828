"""bot.teams.wire reads and writes activities exactly as msrest does: same objects, same JSON,
same errors, on Teams-shaped activities and on generated ones with wrong types everywhere."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import pytest
from botbuilder.core import MessageFactory, TurnContext
from botbuilder.schema import Activity, Attachment, ChannelAccount, Entity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.teams import wire
from bot.teams.wire import read_activity, write_activity
from tests import teams_activities as ta

SERVICE = "http://127.0.0.1:9/teams"


def msrest_read(body: Any) -> Activity:
    return Activity().deserialize(body)


def outcome(fn: Any, arg: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(arg)
    except Exception as exc:  # compare the kind of failure, not the message
        return "error", type(exc)


def teams_bodies() -> list[dict[str, Any]]:
    bodies = [
        ta.installation(SERVICE, "a:1", "29:u", "Alex", aad="aad-1"),
        ta.message(SERVICE, "a:1", "29:u", "Alex", "hello"),
        ta.message(SERVICE, "19:g@thread.v2", "29:u", "Alex", "hi", group=True),
        ta.card_action(SERVICE, "a:1", "29:u", "Alex", "accept", {"session_id": "s1"},
                       reply_to="1:5"),
        ta.search(SERVICE, "a:1", "29:u", "Alex", "vi", reply_to="1:5"),
    ]
    full = ta.message(SERVICE, "a:1", "29:u", "Alex", "<at>Switchboard</at> status")
    full.update({
        "timestamp": "2024-05-01T10:11:12.1234567Z",
        "localTimestamp": "2024-05-01T12:11:12.123+02:00",
        "localTimezone": "Europe/Berlin",
        "locale": "en-US",
        "textFormat": "plain",
        "attachments": [{"contentType": "text/html", "content": "<p>hi</p>"}],
        "entities": [
            {"type": "mention", "text": "<at>Switchboard</at>",
             "mentioned": {"id": ta.BOT_ID, "name": "Switchboard"}},
            {"type": "clientInfo", "locale": "en-US", "country": "US", "platform": "Web",
             "timezone": "Europe/Berlin"},
        ],
        "channelData": {"tenant": {"id": "t"}, "source": {"name": "message"},
                        "legacy": {"replyToId": "x"}},
        "membersAdded": [{"id": ta.BOT_ID}, None],
        "listenFor": ["a", None],
        "suggestedActions": {"to": ["x"], "actions": [{"type": "imBack", "value": 1}]},
        "semanticAction": {"id": "s", "state": "start", "entities": {"e": {"type": "t"}}},
        "unknownTopLevel": {"kept": True},
    })
    full["from"]["userRole"] = "user"  # an unknown key of a nested model
    bodies.append(full)
    return bodies


@pytest.mark.parametrize("body", teams_bodies())
def test_reads_teams_activities_like_msrest(body: dict[str, Any]) -> None:
    fast = wire._read_model(Activity, body)  # the fast path itself, no fallback
    assert fast == msrest_read(body)
    assert fast.additional_properties == msrest_read(body).additional_properties
    assert wire._write_model(fast) == fast.serialize()


def test_mentions_still_come_off_the_text() -> None:
    body = teams_bodies()[-1]
    assert TurnContext.remove_recipient_mention(read_activity(body)).strip() == "status"


class Plain(enum.StrEnum):
    ACCEPT = "accept"


class Mixed(str, enum.Enum):  # noqa: UP042 - on purpose: str() is not the value
    ACCEPT = "accept"


def test_writes_replies_like_msrest() -> None:
    inbound = read_activity(ta.message(SERVICE, "a:1", "29:u", "Alex", "hi"))
    reference = TurnContext.get_conversation_reference(inbound)
    card = {"type": "AdaptiveCard", "actions": [{"verb": Plain.ACCEPT, "other": Mixed.ACCEPT,
                                                 "tuple": (1, 2), "when": dt.date(2024, 1, 2),
                                                 "none": None, "n": 1.5, "flag": False}],
            "nested": [[{"a": [1, "b", None]}]], "model": ChannelAccount(id="x")}
    replies = [
        MessageFactory.text("I don't know \"q1x\"."),
        MessageFactory.attachment(Attachment(content_type="application/vnd.microsoft.card"
                                             ".adaptive", content=card)),
        Activity(type="message", timestamp=dt.datetime(2024, 1, 2, 3, 4, 5, 600,
                                                       tzinfo=dt.UTC),
                 entities=[Entity(type="x"), None], listen_for=["a"], value={"k": [Plain.ACCEPT]}),
        Activity(type="message", text=Plain.ACCEPT),  # not a plain str: msrest writes .value
        Activity(type="message", attachments=[{"contentType": "a dict, not a model"}]),
        Activity(type="message", text=5),
        Activity(type="message", from_property={"id": "a dict"}),
        Activity(type="message", importance=True, members_added=(ChannelAccount(id="t"),)),
    ]
    for reply in replies:
        TurnContext.apply_conversation_reference(reply, reference)
        assert outcome(write_activity, reply) == outcome(lambda a: a.serialize(), reply)
    for reply in replies[:3]:  # what Switchboard sends takes the fast path
        assert wire._write_model(reply) == reply.serialize()


# -- generated activities -----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=8)


def maybe(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the declared type, sometimes anything JSON can hold."""
    return st.one_of(good, good, good, json_values)


account = st.fixed_dictionaries({}, optional={
    "id": maybe(st.text(max_size=5)), "name": maybe(st.text(max_size=5)),
    "aadObjectId": maybe(st.text(max_size=5)), "role": maybe(st.text(max_size=3)),
    "isGroup": maybe(st.booleans()), "tenantId": maybe(st.text(max_size=3)),
    "properties": json_values, "extra": json_values})
dates = st.sampled_from(["2024-05-01T10:11:12Z", "2024-05-01T10:11:12.1234567+02:00",
                         "2024-13-01T00:00:00Z", "yesterday", "0000-01-01T00:00:00Z"])
activity_bodies = st.fixed_dictionaries({}, optional={
    "type": maybe(st.sampled_from(["message", "invoke", "conversationUpdate"])),
    "id": maybe(st.text(max_size=5)),
    "text": maybe(st.text(max_size=5)),
    "from": maybe(account), "recipient": maybe(account), "conversation": maybe(account),
    "membersAdded": maybe(st.lists(st.none() | account, max_size=2)),
    "attachments": maybe(st.lists(st.fixed_dictionaries({}, optional={
        "contentType": maybe(st.text(max_size=3)), "content": json_values}), max_size=2)),
    "entities": maybe(st.lists(st.fixed_dictionaries({}, optional={
        "type": maybe(st.text(max_size=3)), "mentioned": json_values}), max_size=2)),
    "listenFor": maybe(st.lists(st.none() | st.text(max_size=3), max_size=2)),
    "semanticAction": maybe(st.fixed_dictionaries({}, optional={
        "entities": maybe(st.dictionaries(st.text(max_size=3), st.none() | st.fixed_dictionaries(
            {"type": maybe(st.text(max_size=3))}), max_size=2))})),
    "timestamp": maybe(dates), "localTimestamp": maybe(dates),
    "historyDisclosed": maybe(st.booleans()), "value": json_values, "channelData": json_values,
    "unknown": json_values,
})


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=activity_bodies)
def test_generated_activities_read_and_write_like_msrest(body: dict[str, Any]) -> None:
    fast, slow = outcome(read_activity, body), outcome(msrest_read, body)
    assert fast == slow
    if slow[0] == "ok":
        assert fast[1].additional_properties == slow[1].additional_properties
        assert outcome(write_activity, slow[1]) == outcome(lambda a: a.serialize(), slow[1])
