"""Replies from the card reach the relay (a local SMTP sink), threaded; Mark handled; ACW."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.domain.mail import EMAIL_REPLY_QUEUED, EMAIL_REPLY_SENT
from bot.domain.session import Phase
from bot.domain.task import TaskState
from bot.services.context import Ctx
from bot.services.mail import SEND_REPLY
from tests.email.conftest import MailWorld, mail_catalog
from tests.email.mailer import free_port, mail, send, smtp_sink
from tests.email.test_inbound import events, texts, validate
from tests.support.cards import find_action
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually
from tests.support.world import World, running_world


async def accepted(world: MailWorld, agent: TeamsAgent) -> tuple[str, str, dict[str, Any]]:
    """Accept the latest invitation: (session id, card id, accepted card)."""
    invitation = await world.invitation(agent)
    session_id, card = await agent.accept(invitation)
    return session_id, invitation["id"], card


async def mailed_and_accepted(world: World, port: int) -> tuple[TeamsAgent, str, str]:
    """Agent 1 registers, a mail arrives on `port`, the agent accepts its invitation: (agent,
    session id, card id)."""
    agent = world.agent(1)
    await agent.register()
    await send(port, mail())
    invitation = (await eventually(lambda: agent.buttons("accept")))[-1]
    session_id, _ = await agent.accept(invitation)
    return agent, session_id, invitation["id"]


async def test_reply_reaches_the_sender_threaded(mail_world: MailWorld) -> None:
    agent = await mail_world.agent()
    message = mail(subject="Refund", to="sales@example.com", cc="Bob <bob@example.org>")
    message["References"] = "<earlier@example.net>"
    await send(mail_world.smtp_port, message)
    session_id, card_id, card = await accepted(mail_world, agent)
    assert find_action(card, "reply_all") is not None
    assert "Reply all also goes to bob@example.org" in texts(card)
    wrapup = await agent.click("reply", {"session_id": session_id,
                                         "reply_text": "Dear Jane,\n\nrefunded today.\n\nSam"},
                               reply_to=card_id)
    # A sent reply ends the session: after-call work and the wrap-up form follow.
    assert find_action(wrapup, "save_wrapup") is not None
    assert find_action(wrapup, "end_acw") is not None
    [sent] = await eventually(lambda: mail_world.sink.received)
    assert sent.mail_from == "sales@example.com"
    assert sent.rcpt_tos == ["jane@example.net"]
    reply = sent.message
    assert reply["From"] == "Sales <sales@example.com>"
    assert reply["To"] == "jane@example.net" and reply["Cc"] is None
    assert reply["Subject"] == "Re: Refund"
    assert reply["In-Reply-To"] == "<m1@example.net>"
    assert reply["References"] == "<earlier@example.net> <m1@example.net>"
    assert reply["Message-ID"].endswith("@example.com>")
    body = reply.get_content().replace("\r\n", "\n")
    assert body.startswith("Dear Jane,\n\nrefunded today.\n\nSam\n")
    assert "> Please refund order 42." in body  # the message is quoted below
    await eventually(lambda: events(mail_world, EMAIL_REPLY_SENT))
    [queued] = await events(mail_world, EMAIL_REPLY_QUEUED)
    assert queued.data["reply_all"] is False and queued.data["recipients"] == 1
    # ACW ends, the task is done, the wrap-up is saved: the card concludes.
    await agent.click("end_acw", {"session_id": session_id}, reply_to=card_id)
    assert await mail_world.tasks() == []  # the task is done
    concluded = await agent.click("save_wrapup", {"session_id": session_id, "tags": "refund"},
                                  reply_to=card_id)
    assert find_action(concluded, "save_wrapup") is None
    validate({"accepted": card, "wrapup": wrapup, "concluded": concluded})


async def test_reply_all_copies_the_others_and_honours_reply_to(mail_world: MailWorld) -> None:
    agent = await mail_world.agent()
    message = mail(subject="Re: Offer", to="sales@example.com, Dana <dana@example.org>",
                   cc="bob@example.org, support@example.com", message_id="<m2@example.net>")
    message["Reply-To"] = "Jane (office) <office@example.net>"
    await send(mail_world.smtp_port, message)
    session_id, card_id, _ = await accepted(mail_world, agent)
    await agent.click("reply_all", {"session_id": session_id, "reply_text": "Thanks, all."},
                      reply_to=card_id)
    [sent] = await eventually(lambda: mail_world.sink.received)
    assert sorted(sent.rcpt_tos) == ["bob@example.org", "dana@example.org",
                                     "office@example.net"]
    assert sent.message["To"] == "office@example.net"
    assert sent.message["Cc"] == "dana@example.org, bob@example.org"
    assert sent.message["Subject"] == "Re: Offer"  # no "Re: Re:"
    assert sent.message["In-Reply-To"] == "<m2@example.net>"


async def test_mark_handled_ends_the_session_without_mail(mail_world: MailWorld) -> None:
    agent = await mail_world.agent()
    await send(mail_world.smtp_port, mail())
    session_id, card_id, _ = await accepted(mail_world, agent)
    wrapup = await agent.click("mark_handled", {"session_id": session_id}, reply_to=card_id)
    assert find_action(wrapup, "save_wrapup") is not None

    async def session_phase() -> Phase:
        async def load(ctx: Ctx) -> Phase:
            session = await ctx.uow.sessions.get(session_id)
            assert session is not None
            return session.phase
        return await mail_world.world.engine.run(load)

    assert await session_phase() is Phase.ACW
    await mail_world.world.advance(21)  # the service's 20 s of ACW
    assert await session_phase() is Phase.ENDED
    assert mail_world.sink.received == []


async def test_an_empty_reply_keeps_the_card_and_says_why(mail_world: MailWorld) -> None:
    agent = await mail_world.agent()
    await send(mail_world.smtp_port, mail())
    session_id, card_id, _ = await accepted(mail_world, agent)
    card = await agent.click("reply", {"session_id": session_id, "reply_text": "   "},
                             reply_to=card_id)
    assert "Write your reply first." in texts(card)
    assert find_action(card, "reply") is not None  # still the accepted card
    [task] = await mail_world.tasks()
    assert task.state is TaskState.CONNECTED


async def test_without_a_relay_reply_is_refused_on_the_card(tmp_path: Path) -> None:
    port = free_port()
    async with running_world(mail_catalog(), tmp_path, smtp_port=port) as world:
        agent, session_id, card_id = await mailed_and_accepted(world, port)
        card = await agent.click("reply", {"session_id": session_id, "reply_text": "Hi"},
                                 reply_to=card_id)
        assert "Replies are off here" in texts(card)
        assert find_action(card, "mark_handled") is not None


async def test_a_reply_waits_for_the_relay_and_is_sent_once_it_answers(
        tmp_path: Path) -> None:
    """The relay is down when the agent replies: the job retries until it gets through."""
    relay_port, port = free_port(), free_port()  # nothing listens on the relay's port yet
    async with running_world(mail_catalog(), tmp_path, smtp_port=port,
                             smtp_relay=f"127.0.0.1:{relay_port}") as world:
        agent, session_id, card_id = await mailed_and_accepted(world, port)
        await agent.click("reply", {"session_id": session_id, "reply_text": "Hi Jane"},
                          reply_to=card_id)
        await eventually(lambda: _attempted(world))  # refused, put off with backoff
        async with smtp_sink(relay_port) as relay:
            await world.advance(600)  # past the backoff
            [sent] = await eventually(lambda: relay.received)
            assert sent.rcpt_tos == ["jane@example.net"]


async def _attempted(world: World) -> bool:
    async def load(ctx: Ctx) -> bool:
        due = await ctx.uow.timers.due(ctx.now + timedelta(days=1), 10, [SEND_REPLY])
        return any(t.attempts >= 1 and t.lease_until is None for t in due)
    result: bool = await world.engine.run(load)
    return result
