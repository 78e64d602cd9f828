"""SwitchboardTurnContext sends like the Agents SDK's TurnContext, without deep-copying replies:
the caller's activity stays untouched, expectReplies buffers, send handlers see the output."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from microsoft_agents.activity import Activity, Attachment, ResourceResponse
from microsoft_agents.hosting.core import ChannelAdapter, MessageFactory, TurnContext

from bot.teams.adapter import SwitchboardTurnContext
from bot.teams.wire import read_activity
from tests import teams_activities as ta

SERVICE = "http://127.0.0.1:9/teams"


class RecordingAdapter(ChannelAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Activity] = []

    async def send_activities(self, context: TurnContext,
                              activities: list[Activity]) -> list[ResourceResponse]:
        self.sent += activities
        return [ResourceResponse(id=f"1:{len(self.sent)}") for _ in activities]

    async def update_activity(self, context: TurnContext, activity: Activity) -> None:
        raise NotImplementedError

    async def delete_activity(self, context: TurnContext, reference: Any) -> None:
        raise NotImplementedError


BODY = ta.message(SERVICE, "a:1", "29:u", "Alex", "hi")


def inbound(**extra: Any) -> Activity:
    return read_activity({**BODY, **extra})


async def sent_by(context_cls: type[TurnContext], reply: Activity,
                  **extra: Any) -> tuple[RecordingAdapter, TurnContext, Any]:
    adapter = RecordingAdapter()
    context = context_cls(adapter, inbound(**extra))
    seen: list[list[Activity]] = []

    async def handler(ctx: TurnContext, activities: list[Activity], next_send: Any) -> Any:
        seen.append(list(activities))
        return await next_send()

    context.on_send_activities(handler)
    result = await context.send_activity(reply)
    return adapter, context, (result, seen)


async def test_sends_what_the_sdk_sends_and_leaves_the_reply_alone() -> None:
    card = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "x"}]}
    ours = MessageFactory.attachment(Attachment(content_type="x", content=card))
    theirs = MessageFactory.attachment(Attachment(content_type="x", content=card))
    adapter, context, (result, seen) = await sent_by(SwitchboardTurnContext, ours)
    reference, stock, (stock_result, stock_seen) = await sent_by(TurnContext, theirs)
    assert adapter.sent == reference.sent and len(adapter.sent) == 1
    assert result == stock_result and context.responded and stock.responded
    assert seen == [adapter.sent] and stock_seen == [reference.sent]
    sent = adapter.sent[0]
    assert sent is not ours and sent.reply_to_id == context.activity.id
    assert sent.conversation.id == "a:1" and sent.recipient.id == "29:u"
    assert ours == theirs  # untouched, like the SDK's deepcopy leaves it
    assert ours.conversation is None and ours.reply_to_id is None


async def test_expect_replies_buffers_instead_of_sending() -> None:
    adapter, context, (result, _) = await sent_by(
        SwitchboardTurnContext, MessageFactory.text("x"), deliveryMode="expectReplies")
    assert adapter.sent == [] and len(context.buffered_reply_activities) == 1
    assert result.id is None and context.responded


async def test_without_send_handlers_it_sends_the_same_and_leaves_no_reference_cycle() -> None:
    adapter, reference = RecordingAdapter(), RecordingAdapter()
    context = SwitchboardTurnContext(adapter, inbound())
    stock = TurnContext(reference, inbound())
    assert (await context.send_activity(MessageFactory.text("x"))) == \
        (await stock.send_activity(MessageFactory.text("x")))
    assert adapter.sent == reference.sent and context.responded
    gc.disable()  # freed by reference counting alone, or not at all
    try:
        probe = SwitchboardTurnContext(RecordingAdapter(), inbound())
        await probe.send_activity(MessageFactory.text("y"))
        gone = weakref.ref(probe)
        del probe
        assert gone() is None
    finally:
        gc.enable()


async def test_replies_are_the_messages_message_factory_makes() -> None:
    from microsoft_agents.hosting.core import MessageFactory as Factory

    from bot.teams.handler import as_activity
    from bot.teams.wire import write_activity
    card = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "x"}]}
    stock = [Factory.text("hello"), Factory.attachment(Attachment(
        content_type="application/vnd.microsoft.card.adaptive", content=card))]
    for ours, theirs in zip([as_activity("hello"), as_activity(card)], stock, strict=True):
        assert write_activity(ours) == write_activity(theirs)
        sent_ours, sent_theirs = RecordingAdapter(), RecordingAdapter()
        await SwitchboardTurnContext(sent_ours, inbound()).send_activity(ours)
        await TurnContext(sent_theirs, inbound()).send_activity(theirs)
        assert [write_activity(a) for a in sent_ours.sent] == \
            [write_activity(a) for a in sent_theirs.sent]


def test_the_reference_is_the_sdks_without_the_copies() -> None:
    from bot.teams.adapter import reference_of
    for activity in (inbound(), inbound(type="conversationUpdate", channelId="webchat")):
        assert reference_of(activity) == activity.get_conversation_reference()
