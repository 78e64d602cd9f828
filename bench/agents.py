"""Simulated agents: each reads its invitation card, accepts with the card's own Action.Execute,
answers every customer message in the chatroom, then terminates, ends after-call work and saves
the wrap-up — all through POST /api/messages, as Teams would send it."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp

from bench.scene import Chat, Scene, card_of, find_action, find_input, now
from bench.services import upn

ACCEPT_THINK = (0.05, 0.15)  # seconds an agent looks at a card before clicking
REPLY_THINK = (0.02, 0.08)  # seconds before answering a customer message


class AgentError(Exception):
    pass


class AgentSim:
    def __init__(self, n: int, scene: Scene, http: aiohttp.ClientSession, bot_url: str) -> None:
        self.n = n
        self.scene = scene
        self.http = http
        self.messages_url = f"{bot_url}/api/messages"
        self.inbox: asyncio.Queue[tuple[str, Any, Chat]] = asyncio.Queue()
        self.rng = random.Random(n)
        self.chat: Chat | None = None
        self.card_id = ""
        self.card: dict[str, Any] = {}
        self.answered: set[str] = set()
        self.user_id = f"29:bench-{n}"
        self.conversation_id = f"a:bench-{n}"
        self.name = f"Agent {n}"
        self.aad = f"00000000-0000-0000-0000-{n:012d}"
        self.upn = upn(n)
        scene.agents[self.conversation_id] = self

    # -- talking to Switchboard -----------------------------------------------------------

    async def post(self, activity: dict[str, Any]) -> tuple[int, Any]:
        async with self.http.post(self.messages_url, json=activity) as response:
            body = await response.json() if response.content_type == "application/json" \
                else await response.text()
            if response.status >= 300:
                raise AgentError(f"agent {self.n}: {activity['type']} answered "
                                 f"{response.status}: {str(body)[:200]}")
            return response.status, body

    async def say(self, text: str) -> None:
        await self.post(self.scene.activity("message", self, text=text, textFormat="plain"))

    async def click(self, verb: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send the current card's own Action.Execute for `verb`; return the card answered."""
        action = find_action(self.card, verb)
        if action is None:
            raise AgentError(f"agent {self.n}: no {verb!r} button on the card")
        value = {"action": {"type": "Action.Execute", "id": action.get("id"), "verb": verb,
                            "data": {**action.get("data", {}), **(inputs or {})}},
                 "trigger": "manual"}
        _, body = await self.post(self.scene.activity(
            "invoke", self, name="adaptiveCard/action", value=value, replyToId=self.card_id))
        if not isinstance(body, dict) or body.get("statusCode") != 200:
            raise AgentError(f"agent {self.n}: {verb} answered {str(body)[:200]}")
        card = body["value"]
        self.card = card
        return dict(card)

    async def register(self) -> None:
        await self.post(self.scene.activity("installationUpdate", self, action="add"))
        await self.say("register")

    # -- behaviour ------------------------------------------------------------------------

    async def run(self) -> None:
        """React to what arrives until cancelled; a failure is counted, the agent goes on."""
        while True:
            kind, payload, chat = await self.inbox.get()
            try:
                await self.handle(kind, payload, chat)
            except (AgentError, aiohttp.ClientError, TimeoutError, KeyError) as exc:
                self.scene.samples.error(f"{type(exc).__name__}: {exc}")

    async def handle(self, kind: str, payload: Any, chat: Chat) -> None:
        if kind == "invitation":
            self.chat, self.answered = chat, set()
            chat.agent = self
            self.card_id, self.card = payload["id"], card_of(payload) or {}
            await asyncio.sleep(self.rng.uniform(*ACCEPT_THINK))
            accepted = await self.click("accept")
            if find_action(accepted, "terminate") is None:
                raise AgentError(f"agent {self.n}: accept did not connect {chat.label}")
        elif kind == "header":
            chat.chatting.set()
            # Messages the customer sent before the chatroom existed come in its transcript.
            for text in [t for t in chat.customer_sent if chat.delivered[t]]:
                await self.answer(chat, text)
        elif kind == "relayed":
            await self.answer(chat, payload)
        if chat is self.chat and chat.final_count is not None \
                and len(self.answered) >= chat.final_count and not chat.finishing:
            await self.finish(chat)

    async def answer(self, chat: Chat, text: str) -> None:
        if text in self.answered:
            return
        self.answered.add(text)
        await asyncio.sleep(self.rng.uniform(*REPLY_THINK))
        reply = "a" + text[1:]  # c17-3 -> a17-3
        chat.agent_sent[reply] = now()
        await self.say(reply)

    async def finish(self, chat: Chat) -> None:
        """Terminate, end after-call work, save the wrap-up with the first primary code."""
        chat.finishing = True
        await self.click("terminate")
        if find_action(self.card, "end_acw") is not None:
            await self.click("end_acw")
        code = find_input(self.card, "primary_code")
        choice = (code or {}).get("choices", [{}])[0].get("value", "")
        concluded = await self.click("save_wrapup", {"primary_code": choice})
        if find_action(concluded, "save_wrapup") is not None:
            raise AgentError(f"agent {self.n}: the wrap-up of {chat.label} was not saved")
        chat.done_at = now()
        chat.done.set()
        self.chat = None

    def wake(self, chat: Chat) -> None:
        """The customer stopped writing: finish once every message is answered."""
        self.inbox.put_nowait(("close", None, chat))
