"""Self-test of the Agents Playground harness against a tiny bot written right here.

The bot is a plain aiohttp handler (no botbuilder, no Switchboard code): it welcomes the user
with an Adaptive Card on installation, answers ``help``, can send a proactive message, and on an
``adaptiveCard/action`` invoke answers with a replacement card AND updates the original message
through the playground's Bot Connector (PUT), as Switchboard will.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from .fixtures import PlaygroundFactory
from .harness import ADAPTIVE_CARD, PlaygroundHTTPError, StreamTimeout

BOT_KEY = web.AppKey("tiny_bot", "TinyBot")


def task_card(status: str, by: str | None = None) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": "Welcome to Switchboard", "weight": "Bolder"},
        {"type": "TextBlock", "text": f"Task T-1 is {status}", "wrap": True},
    ]
    if by:
        body.append({"type": "TextBlock", "text": f"Accepted by {by}"})
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
    }
    if status == "open":
        card["actions"] = [
            {
                "type": "Action.Execute",
                "title": "Accept",
                "verb": "accept",
                "data": {"task": "T-1"},
                "fallback": {"type": "Action.Submit", "title": "Accept", "data": {"task": "T-1"}},
            }
        ]
    return card


class TinyBot:
    """Enough of a Teams bot to exercise every harness feature."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.reference: dict[str, Any] | None = None
        self.session: aiohttp.ClientSession | None = None

    async def _connector(self, method: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self.session is not None
        async with self.session.request(method, url, json=body) as resp:
            text = await resp.text()
            assert resp.status in (200, 201, 202), f"{method} {url} -> {resp.status} {text}"
            return await resp.json() if text else {}

    @staticmethod
    def _reply(activity: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {
            "type": "message",
            "from": activity["recipient"],
            "recipient": activity["from"],
            "conversation": activity["conversation"],
            **fields,
        }

    async def messages(self, request: web.Request) -> web.Response:
        activity = await request.json()
        self.received.append(activity)
        service_url = activity["serviceUrl"].rstrip("/")
        conversation_id = activity["conversation"]["id"]
        activities_url = f"{service_url}/v3/conversations/{conversation_id}/activities"
        kind = activity.get("type")

        if kind in ("installationUpdate", "conversationUpdate"):
            self.reference = {
                "service_url": service_url,
                "conversation": activity["conversation"],
                "user": activity["from"],
                "bot": activity["recipient"],
                "tenant_id": activity["conversation"].get("tenantId"),
            }
        if kind == "installationUpdate" and activity.get("action") == "add":
            # A card without `text`: the playground then keeps it as ONE message with an id.
            card = {"contentType": ADAPTIVE_CARD, "content": task_card("open")}
            await self._connector("POST", activities_url, self._reply(activity, attachments=[card]))
        elif kind == "message":
            text = (activity.get("text") or "").strip().lower()
            answer = "Commands: help, accept" if text == "help" else f"Sorry, I don't know {text!r}"
            await self._connector(
                "POST", activities_url, self._reply(activity, text=answer, replyToId=activity["id"])
            )
        elif kind == "invoke" and activity.get("name") == "adaptiveCard/action":
            action = activity["value"]["action"]
            if action.get("verb") == "explode":
                return web.Response(status=500, text="bot crashed")
            if action.get("verb") != "accept":
                return web.json_response(
                    {
                        "statusCode": 400,
                        "type": "application/vnd.microsoft.error",
                        "value": {"code": "BadRequest", "message": "unknown verb"},
                    }
                )
            who = activity["from"].get("name") or activity["from"]["id"]
            card = task_card("accepted", by=who)
            update = self._reply(
                activity,
                id=activity["replyToId"],
                attachments=[{"contentType": ADAPTIVE_CARD, "content": card}],
            )
            await self._connector("PUT", f"{activities_url}/{activity['replyToId']}", update)
            return web.json_response(
                {"statusCode": 200, "type": ADAPTIVE_CARD, "value": card}, status=200
            )
        return web.Response(status=201)

    async def notify(self, request: web.Request) -> web.Response:
        """Proactive message: open (or find) the 1:1 chat with the stored user, then post."""
        ref = self.reference
        assert ref is not None, "notify before installation"
        payload = await request.json()
        created = await self._connector(
            "POST",
            f"{ref['service_url']}/v3/conversations",
            {
                "isGroup": False,
                "bot": ref["bot"],
                "members": [{"id": ref["user"]["id"]}],
                "tenantId": ref["tenant_id"],
                "channelData": {"tenant": {"id": ref["tenant_id"]}},
            },
        )
        conversation_id = created["id"]
        sent = await self._connector(
            "POST",
            f"{ref['service_url']}/v3/conversations/{conversation_id}/activities",
            {
                "type": "message",
                "from": ref["bot"],
                "recipient": ref["user"],
                "conversation": {"id": conversation_id},
                "text": payload["text"],
            },
        )
        return web.json_response({"conversationId": conversation_id, "activityId": sent.get("id")})

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [a for a in self.received if a.get("type") == kind]


def make_bot_app() -> web.Application:
    bot = TinyBot()
    app = web.Application()
    app[BOT_KEY] = bot

    async def session_ctx(_: web.Application) -> Any:
        bot.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        yield
        await bot.session.close()

    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/api/messages", bot.messages)
    app.router.add_post("/api/notify", bot.notify)
    return app


@pytest.fixture
async def bot_server(aiohttp_server: Any) -> Any:
    return await aiohttp_server(make_bot_app())


def bot_of(server: Any) -> TinyBot:
    bot: TinyBot = server.app[BOT_KEY]
    return bot


async def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_welcome_help_proactive_and_accept(
    playground_factory: PlaygroundFactory, bot_server: Any
) -> None:
    bot = bot_of(bot_server)
    pg = await playground_factory(str(bot_server.make_url("/api/messages")))
    assert pg.user_id == "user-id-0"
    assert pg.current_user["email"] == "alexw@example.com"
    assert pg.service_url == f"http://localhost:{pg.port}/_connector"

    # Installation -> welcome card on the stream.
    await pg.install()
    welcome = await pg.wait_for_message(
        "Welcome to Switchboard", with_card=True, conversation_id=pg.personal_chat_id
    )
    assert welcome.from_id == pg.bot_id
    assert welcome.card is not None and welcome.card["actions"][0]["verb"] == "accept"
    install = bot.of_type("installationUpdate")[0]
    assert install["serviceUrl"] == pg.service_url
    assert install["channelId"] == "msteams"
    assert install["from"]["id"] == pg.user_id
    assert install["recipient"]["id"] == pg.bot_id
    assert install["conversation"]["id"] == pg.personal_chat_id
    assert install["conversation"]["conversationType"] == "personal"
    assert install["conversation"]["tenantId"] == pg.tenant_id
    await wait_until(lambda: bot.of_type("conversationUpdate"))

    # `help` -> a text answer.
    mark = pg.mark()
    message_id = await pg.send_text(pg.personal_chat_id, "help")
    answer = await pg.wait_for_message("Commands:", since=mark)
    assert answer.text == "Commands: help, accept"
    assert not answer.cards
    incoming = bot.of_type("message")[0]
    assert incoming["text"] == "help" and incoming["from"]["name"] == "Alex Wilber"
    assert incoming["id"] != message_id  # the bot sees another id than the playground's

    # Proactive message (bot-initiated, no incoming activity).
    mark = pg.mark()
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            bot_server.make_url("/api/notify"), json={"text": "New task assigned: T-2"}
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        notified = await resp.json()
    assert notified["conversationId"] == pg.personal_chat_id
    proactive = await pg.wait_for_message("New task assigned: T-2", since=mark)
    assert proactive.conversation_id == pg.personal_chat_id
    assert proactive.message_id == notified["activityId"]

    # Accept, pressed like the web client does: the invoke response comes back to us and the
    # bot's PUT shows up as an updateMessage for the same message id.
    mark = pg.mark()
    response = await pg.execute_card_action(welcome.message_id, "accept", {"task": "T-1"})
    assert response["type"] == ADAPTIVE_CARD
    assert response["value"]["body"][1]["text"] == "Task T-1 is accepted"
    updated = await pg.wait_for_update(
        welcome.message_id, contains="Accepted by Alex Wilber", since=mark
    )
    assert updated.card is not None and "actions" not in updated.card
    invoke = bot.of_type("invoke")[0]
    assert invoke["replyToId"] == welcome.message_id
    assert invoke["value"]["action"] == {
        "type": "Action.Execute",
        "verb": "accept",
        "data": {"task": "T-1"},
    }
    assert invoke["value"]["trigger"] == "manual"
    assert invoke["channelData"]["source"] == {"name": "message"}
    assert pg.problems() == []


async def test_custom_activity_invoke_updates_card(
    playground_factory: PlaygroundFactory, bot_server: Any
) -> None:
    bot = bot_of(bot_server)
    pg = await playground_factory(str(bot_server.make_url("/api/messages")))
    await pg.install()
    welcome = await pg.wait_for_message("Welcome", with_card=True)

    mark = pg.mark()
    sent = await pg.send_custom_activity(
        pg.card_action_activity(welcome.message_id, "accept", {"task": "T-1"})
    )
    # Filled in from the playground's template.
    assert sent["serviceUrl"] == pg.service_url
    assert sent["from"]["id"] == pg.user_id
    assert sent["recipient"]["id"] == pg.bot_id
    assert sent["conversation"]["id"] == pg.personal_chat_id
    updated = await pg.wait_for_update(
        welcome.message_id, contains="Task T-1 is accepted", since=mark
    )
    assert updated.conversation_id == pg.personal_chat_id
    invoke = bot.of_type("invoke")[0]
    assert invoke["name"] == "adaptiveCard/action"
    assert invoke["id"] == sent["id"]
    # The invoke response is not returned by customActivities, but the log stream has it.
    answer = await pg.bot_response(sent["id"])
    assert answer.status == 200
    assert answer.response["statusCode"] == 200
    assert answer.response["value"]["body"][1]["text"] == "Task T-1 is accepted"
    assert pg.problems() == []


async def test_invoke_errors_and_timeouts_are_reported(
    playground_factory: PlaygroundFactory, bot_server: Any
) -> None:
    pg = await playground_factory(str(bot_server.make_url("/api/messages")))
    await pg.install()
    welcome = await pg.wait_for_message("Welcome", with_card=True)

    # A Teams-style error body passes through unchanged (minus statusCode).
    response = await pg.execute_card_action(welcome.message_id, "reject")
    assert response == {
        "type": "application/vnd.microsoft.error",
        "value": {"code": "BadRequest", "message": "unknown verb"},
    }
    # An HTTP error from the bot becomes a 502 from the playground.
    with pytest.raises(PlaygroundHTTPError) as failure:
        await pg.execute_card_action(welcome.message_id, "explode")
    assert failure.value.status == 502
    assert failure.value.json()["innerHttpError"] == {"statusCode": 500, "body": "bot crashed"}
    crash = await pg.wait_for_log(lambda item: item.is_problem)
    assert crash.to_bot and crash.activity_name == "invoke" and crash.status == 500
    assert crash.response == "bot crashed"

    with pytest.raises(StreamTimeout, match="Welcome to Switchboard"):
        await pg.wait_for_update(welcome.message_id, timeout=0.2)
