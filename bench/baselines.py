"""The two bots Switchboard's /api/messages throughput is compared with, each as its own process.

``python -m bench.baselines echo --port N``: the stock botbuilder echo bot — CloudAdapter with
ConfigurationBotFrameworkAuthentication and an empty app id (local mode, like Switchboard's),
replying with ``turn_context.send_activity``.

``python -m bench.baselines raw --port N``: the same work with nothing but aiohttp — parse the
activity, post one reply with a pooled client session, answer 200.

Both reply ``Echo: <text>`` to the activity's serviceUrl (the connector stand-in).
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web


class EchoConfig:
    """What ConfigurationBotFrameworkAuthentication reads; an empty app id = no auth."""

    APP_ID = ""
    APP_PASSWORD = ""
    APP_TYPE = "MultiTenant"
    APP_TENANTID = ""


def echo_app() -> web.Application:
    from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
    from botbuilder.integration.aiohttp import (
        CloudAdapter,
        ConfigurationBotFrameworkAuthentication,
    )

    class EchoBot(ActivityHandler):  # type: ignore[misc]
        async def on_message_activity(self, turn_context: TurnContext) -> None:
            await turn_context.send_activity(
                MessageFactory.text(f"Echo: {turn_context.activity.text}"))

    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(EchoConfig()))
    bot = EchoBot()

    async def messages(request: web.Request) -> web.StreamResponse:
        response: web.StreamResponse = await adapter.process(request, bot)
        return response

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    return app


def raw_app() -> web.Application:
    app = web.Application()
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session_ctx(app: web.Application) -> Any:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            app[session_key] = session
            yield

    async def messages(request: web.Request) -> web.Response:
        activity = await request.json()
        conversation = activity["conversation"]
        reply = {
            "type": "message",
            "text": f"Echo: {activity.get('text', '')}",
            "from": activity.get("recipient"),
            "recipient": activity.get("from"),
            "conversation": conversation,
            "replyToId": activity.get("id"),
        }
        url = (f"{activity['serviceUrl'].rstrip('/')}/v3/conversations/"
               f"{quote(conversation['id'], safe='')}/activities/"
               f"{quote(str(activity.get('id', '')), safe='')}")
        async with request.app[session_key].post(url, json=reply) as answer:
            await answer.read()
            if answer.status >= 400:
                return web.Response(status=502)
        return web.Response(status=200)

    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["echo", "raw"])
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    app = echo_app() if options.kind == "echo" else raw_app()
    web.run_app(app, host="127.0.0.1", port=options.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
