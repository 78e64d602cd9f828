"""bot.teams.wire reads Teams activities into the Agents SDK's models and writes replies as the
Bot Connector takes them; anything else JSON can hold is read or refused, never a crash."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from microsoft_agents.activity import Activity, Attachment, ChannelAccount, Entity
from microsoft_agents.hosting.core import MessageFactory

from bot.teams.wire import ActivityUnreadable, read_activity, write_activity
from tests import teams_activities as ta

SERVICE = "http://127.0.0.1:9/teams"


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
        "locale": "en-US",
        "localTimezone": "Europe/Berlin",
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
        "membersAdded": [{"id": ta.BOT_ID, "name": "Switchboard"}],
        "suggestedActions": {"to": ["x"], "actions": [{"type": "imBack", "title": "ok",
                                                       "value": 1}]},
    })
    bodies.append(full)
    return bodies


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@pytest.mark.parametrize("body", teams_bodies())
def test_a_teams_activity_reads_and_writes_back_to_the_same_json(body: dict[str, Any]) -> None:
    activity = read_activity(body)
    assert activity.conversation.id == body["conversation"]["id"]
    assert activity.from_property.id == body["from"]["id"]
    assert activity.channel_data == body["channelData"]
    assert write_activity(activity) == without_nulls(body)


def test_dates_are_read_and_written_as_iso_instants() -> None:
    body = {**teams_bodies()[1], "timestamp": "2024-05-01T10:11:12.1234567Z",
            "localTimestamp": "2024-05-01T12:11:12.123+02:00"}
    activity = read_activity(body)
    assert activity.timestamp == dt.datetime(2024, 5, 1, 10, 11, 12, 123456, tzinfo=dt.UTC)
    written = write_activity(activity)
    assert dt.datetime.fromisoformat(written["localTimestamp"]) == \
        dt.datetime.fromisoformat("2024-05-01T12:11:12.123+02:00")


def test_mentions_still_come_off_the_text() -> None:
    body = teams_bodies()[-1]
    assert read_activity(body).remove_recipient_mention().strip() == "status"


class Plain(enum.StrEnum):
    ACCEPT = "accept"


def test_a_reply_is_written_without_nulls_and_with_plain_json_values() -> None:
    inbound = read_activity(ta.message(SERVICE, "a:1", "29:u", "Alex", "hi"))
    reference = inbound.get_conversation_reference()
    card = {"type": "AdaptiveCard", "actions": [{"verb": Plain.ACCEPT, "tuple": (1, 2),
                                                 "when": dt.date(2024, 1, 2), "none": None,
                                                 "n": 1.5, "flag": False}],
            "nested": [[{"a": [1, "b", None]}]]}
    reply = MessageFactory.attachment(Attachment(
        content_type="application/vnd.microsoft.card.adaptive", content=card))
    reply.apply_conversation_reference(reference)
    written = write_activity(reply)
    assert written["type"] == "message" and written["replyToId"] == inbound.id
    assert written["conversation"] == {"id": "a:1", "conversationType": "personal",
                                       "tenantId": ta.TENANT}
    assert written["recipient"] == {"id": "29:u", "name": "Alex"}
    action = written["attachments"][0]["content"]["actions"][0]
    assert action == {"verb": "accept", "tuple": [1, 2], "when": "2024-01-02", "none": None,
                      "n": 1.5, "flag": False}  # card content keeps its own nulls
    assert type(action["verb"]) is str
    assert "text" not in written and "entities" not in written and "id" not in written
    text = write_activity(MessageFactory.text("I don't know \"q1x\"."))
    assert text == {"type": "message", "text": "I don't know \"q1x\".",
                    "inputHint": "acceptingInput"}


@pytest.mark.parametrize("body, where", [
    ({"type": "message", "conversation": "x"}, "conversation"),
    ({"type": "message", "from": {"id": 5}}, "from.id"),
    ({"type": "message", "membersAdded": [None]}, "membersAdded"),
    ({"type": "message", "timestamp": "yesterday"}, "timestamp"),
    ({"type": ""}, "type"),
])
def test_a_wrong_field_is_named_without_its_value(body: dict[str, Any], where: str) -> None:
    with pytest.raises(ActivityUnreadable) as caught:
        read_activity(body)
    assert str(caught.value).startswith(where) and "yesterday" not in str(caught.value)


# -- generated activities -----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
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
    "channelId": maybe(st.sampled_from(["msteams", "msteams:COPILOT", ":x", ""])),
    "text": maybe(st.text(max_size=5)),
    "from": maybe(account), "recipient": maybe(account), "conversation": maybe(account),
    "membersAdded": maybe(st.lists(st.none() | account, max_size=2)),
    "attachments": maybe(st.lists(st.fixed_dictionaries({}, optional={
        "contentType": maybe(st.text(max_size=3)), "content": json_values}), max_size=2)),
    "entities": maybe(st.lists(st.fixed_dictionaries({}, optional={
        "type": maybe(st.sampled_from(["mention", "productInfo", "clientInfo", "x"])),
        "id": maybe(st.text(max_size=3)), "mentioned": json_values}), max_size=2)),
    "listenFor": maybe(st.lists(st.none() | st.text(max_size=3), max_size=2)),
    "timestamp": maybe(dates), "localTimestamp": maybe(dates),
    "historyDisclosed": maybe(st.booleans()), "value": json_values, "channelData": json_values,
    "unknown": json_values,
})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=activity_bodies)
def test_generated_activities_are_read_or_refused_and_what_is_read_writes(
        body: dict[str, Any]) -> None:
    try:
        activity = read_activity(body)
    except ActivityUnreadable:
        return
    assert isinstance(activity, Activity)
    written = write_activity(activity)
    assert written["type"] == body["type"]
    # The wire leaves out what is None (an unknown extra key set to null included).
    assert read_activity(written).model_dump(exclude_none=True) == \
        activity.model_dump(exclude_none=True)


def test_models_stay_models_when_written() -> None:
    reply = Activity(type="message", entities=[Entity(type="x")],
                     members_added=[ChannelAccount(id="t")], value={"k": [Plain.ACCEPT]})
    assert write_activity(reply) == {"type": "message", "entities": [{"type": "x"}],
                                     "membersAdded": [{"id": "t"}], "value": {"k": ["accept"]}}
