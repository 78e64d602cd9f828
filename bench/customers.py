"""Simulated website customers on the Interact API: open a chat, hold its WebSocket, write
messages once an agent accepted, read the agent's answers, and see the chat end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random

import aiohttp

from bench.scene import Chat, Scene, now
from bench.services import SERVICE

API = "/api/interact/v1"
WAIT = 30.0  # seconds any single step may take before it counts as an error
SOURCE_ADDRESSES = 32  # customers come from 127.0.0.2..33: the per-IP chat limit stays on


def customer_sessions() -> list[aiohttp.ClientSession]:
    """Client sessions bound to different loopback addresses, as customers have different IPs."""
    return [aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        limit=0, local_addr=(f"127.0.0.{2 + i}", 0))) for i in range(SOURCE_ADDRESSES)]


class Customers:
    def __init__(self, scene: Scene, bot_url: str, sessions: list[aiohttp.ClientSession]) -> None:
        self.scene = scene
        self.api = f"{bot_url}{API}"
        self.sessions = sessions
        self.rng = random.Random(7)

    async def converse(self, chat: Chat, *, count: int | None, interval: float) -> None:
        """One customer from opening the chat to its end; errors are counted, not raised."""
        try:
            await self._converse(chat, count=count, interval=interval)
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
            self.scene.samples.error(f"{chat.label}: {type(exc).__name__}: {exc}")

    async def _converse(self, chat: Chat, *, count: int | None, interval: float) -> None:
        http = self.sessions[chat.n % len(self.sessions)]
        chat.created_at = now()
        async with http.post(f"{self.api}/chats", json={
                "service": SERVICE, "text": f"start {chat.label}",
                "customer": {"name": chat.label}}) as response:
            if response.status != 201:
                raise ValueError(f"open chat answered {response.status}: "
                                 f"{(await response.text())[:200]}")
            opened = await response.json()
        chat_id, token = chat.chat_id, chat.token = opened["chat_id"], opened["token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with http.ws_connect(f"{self.api}/chats/{chat_id}/ws?token={token}") as ws:
            reader = asyncio.create_task(self._read(ws, chat))
            try:
                await asyncio.wait_for(chat.accepted.wait(), WAIT)
                sent = 0
                while count is None or sent < count:
                    pause = interval * self.rng.uniform(0.5, 1.5)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(chat.stop.wait(), pause)
                    if chat.stop.is_set():
                        break
                    text = f"c{chat.n}-{sent}"
                    chat.customer_sent[text] = now()  # before: the relay may beat the answer
                    async with http.post(f"{self.api}/chats/{chat_id}/messages",
                                         json={"text": text}, headers=auth) as response:
                        if response.status != 202:
                            del chat.customer_sent[text]
                            raise ValueError(f"message answered {response.status}")
                    sent += 1
                if chat.keep_open:  # hold the chat (and its WebSocket) until cancelled
                    await asyncio.Event().wait()
                chat.final_count = sent
                if chat.agent is not None:
                    chat.agent.wake(chat)
                await asyncio.wait_for(chat.ended.wait(), WAIT)
                await asyncio.wait_for(chat.done.wait(), WAIT)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    async def leave(self, chat: Chat) -> None:
        """The customer gives up (POST /end): a queued task is cancelled, a chat terminated."""
        if not chat.chat_id:
            return
        http = self.sessions[chat.n % len(self.sessions)]
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.post(f"{self.api}/chats/{chat.chat_id}/end",
                                 headers={"Authorization": f"Bearer {chat.token}"}) as response:
                await response.read()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, chat: Chat) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            event = json.loads(message.data)
            self.scene.last_delivery = now()
            kind = event.get("type")
            if kind == "accepted":
                chat.accepted.set()
            elif kind == "message" and event.get("from") == "agent":
                text = event.get("text", "")
                sent = chat.agent_sent.get(text)
                if sent is not None and not chat.widget_got[text]:
                    self.scene.record(f"widget@{self.scene.relay_tag}", now() - sent)
                chat.widget_got[text] += 1
            elif kind == "ended":
                chat.ended.set()
