"""Simulated agents: each reads its invitation card, accepts with the card's own Action.Execute,
answers every customer message in the chatroom, then terminates, ends after-call work and saves
the wrap-up — all through POST /api/messages, as Teams would send it."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp

from bench.scene import BOT_ID, TENANT, Chat, Scene, now
from bench.services import upn
from tests.standins.connector import ConnectorStandin
from tests.support.cards import card_of, find_action, find_input
from tests.support.teams import TeamsAgent, TeamsError

ACCEPT_THINK = (0.05, 0.15)  # seconds an agent looks at a card before clicking
REPLY_THINK = (0.02, 0.08)  # seconds before answering a customer message


class AgentError(TeamsError):
    pass


class AgentSim(TeamsAgent):
    """Agent n of the test kit (tests/support/teams.py), with the bench's ids and behaviour."""

    user_prefix = "29:bench-"
    conversation_prefix = "a:bench-"
    tenant = TENANT
    bot_id = BOT_ID

    def __init__(self, n: int, scene: Scene, connector: ConnectorStandin,
                 http: aiohttp.ClientSession, bot_url: str) -> None:
        super().__init__(n, connector, http, bot_url)
        self.scene = scene
        self.inbox: asyncio.Queue[tuple[str, Any, Chat]] = asyncio.Queue()
        self.rng = random.Random(n)
        self.chat: Chat | None = None
        self.card_id = ""
        self.card: dict[str, Any] = {}
        self.answered: set[str] = set()
        scene.agents[self.conversation_id] = self

    @property
    def upn(self) -> str:
        return upn(self.n)

    async def post(self, activity: dict[str, Any], *,
                   timeout: float | None = None) -> tuple[int, Any]:
        status, body = await super().post(activity, timeout=timeout)
        if status >= 300:
            raise AgentError(f"agent {self.n}: {activity['type']} answered {status}: "
                             f"{str(body)[:200]}", status)
        return status, body

    async def use_card(self, verb: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Press the current card's own button for `verb`; it becomes the card answered."""
        self.card = await self.press(self.card, verb, inputs, reply_to=self.card_id)
        return self.card

    # -- behaviour ------------------------------------------------------------------------

    async def run(self) -> None:
        """React to what arrives until cancelled; a failure is counted, the agent goes on."""
        while True:
            kind, payload, chat = await self.inbox.get()
            try:
                await self.handle(kind, payload, chat)
            except (TeamsError, aiohttp.ClientError, TimeoutError, KeyError) as exc:
                self.scene.samples.error(f"{type(exc).__name__}: {exc}")

    async def handle(self, kind: str, payload: Any, chat: Chat) -> None:
        if kind == "invitation":
            self.chat, self.answered = chat, set()
            chat.agent = self
            self.card_id, self.card = payload["id"], card_of(payload) or {}
            await asyncio.sleep(self.rng.uniform(*ACCEPT_THINK))
            accepted = await self.use_card("accept")
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
        await self.use_card("terminate")
        if find_action(self.card, "end_acw") is not None:
            await self.use_card("end_acw")
        code = find_input(self.card, "primary_code")
        choice = (code or {}).get("choices", [{}])[0].get("value", "")
        concluded = await self.use_card("save_wrapup", {"primary_code": choice})
        if find_action(concluded, "save_wrapup") is not None:
            raise AgentError(f"agent {self.n}: the wrap-up of {chat.label} was not saved")
        chat.done_at = now()
        chat.done.set()
        self.chat = None

    def wake(self, chat: Chat) -> None:
        """The customer stopped writing: finish once every message is answered."""
        self.inbox.put_nowait(("close", None, chat))
