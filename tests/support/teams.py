"""One agent in Teams: the activities Teams would send for it to Switchboard's /api/messages
(over HTTP, to the in-process test server or to a `python -m bot` process alike), and what the
Bot Connector stand-in received for it."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests import teams_activities as act
from tests.standins.connector import ConnectorStandin
from tests.support.cards import card_of, find_action
from tests.support.http import post_json
from tests.support.waiting import eventually


class TeamsError(AssertionError):
    """Switchboard answered an agent's activity with something other than success."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class TeamsAgent:
    """Agent n: user 29:agent-n in personal chat a:personal-n, UPN an@example.com.

    `base_url` is Switchboard's origin (it may change between posts, as behind a load
    balancer). `confirm_registration`: `register()` also waits for the bot's reply.
    """

    user_prefix = "29:agent-"
    conversation_prefix = "a:personal-"
    tenant = act.TENANT
    bot_id = act.BOT_ID

    def __init__(self, n: int, connector: ConnectorStandin, client: aiohttp.ClientSession,
                 base_url: str, *, timeout: float = 60.0,
                 confirm_registration: bool = False) -> None:
        self.n = n
        self.connector = connector
        self.client = client
        self.base_url = base_url
        self.timeout = timeout
        self.confirm_registration = confirm_registration
        self.invoke_cards: list[tuple[str, dict[str, Any]]] = []  # (verb, card answered)
        # What Teams shows on a card this agent clicked: the invoke's answer, until an update
        # of that card arrives after it (card id -> (updates of it by then, card answered)).
        self._answered: dict[str, tuple[int, dict[str, Any]]] = {}

    @classmethod
    def enrolled(cls, n: int, connector: ConnectorStandin, client: aiohttp.ClientSession,
                 base_url: str, **options: Any) -> TeamsAgent:
        """The agent, made a member the connector's directory answers for."""
        agent = cls(n, connector, client, base_url, **options)
        agent.enrol()
        return agent

    @property
    def user_id(self) -> str:
        return f"{self.user_prefix}{self.n}"

    @property
    def conversation_id(self) -> str:
        return f"{self.conversation_prefix}{self.n}"

    @property
    def name(self) -> str:
        return f"Agent {self.n}"

    @property
    def aad(self) -> str:
        return f"00000000-0000-0000-0000-{self.n:012d}"

    @property
    def upn(self) -> str:
        return f"a{self.n}@example.com"

    def enrol(self) -> None:
        self.connector.add_member(self.user_id, name=self.name, user_principal_name=self.upn,
                                  aad_object_id=self.aad)

    # -- talking to Switchboard -------------------------------------------------------------

    def activity(self, kind: str, /, *, conversation_id: str | None = None, group: bool = False,
                 **fields: Any) -> dict[str, Any]:
        """An activity from this agent, in its personal chat unless another is given."""
        return act.activity(kind, self.connector.service_url,
                            conversation_id or self.conversation_id, self.user_id, self.name,
                            aad=self.aad, conversation_type="groupChat" if group else "personal",
                            tenant=self.tenant, bot_id=self.bot_id, **fields)

    async def post(self, activity: dict[str, Any], *,
                   timeout: float | None = None) -> tuple[int, Any]:
        return await post_json(self.client, f"{self.base_url}/api/messages", activity,
                               timeout=timeout or self.timeout)

    async def install(self) -> tuple[int, Any]:
        return await self.post(self.activity("installationUpdate", action="add"))

    async def say(self, text: str, *, timeout: float | None = None) -> tuple[int, Any]:
        return await self.post(self.activity("message", text=text, textFormat="plain"),
                               timeout=timeout)

    async def say_in(self, conversation_id: str, text: str) -> tuple[int, Any]:
        """A message in a group chat."""
        return await self.post(self.activity("message", conversation_id=conversation_id,
                                             group=True, text=text, textFormat="plain"))

    async def register(self) -> None:
        """Install the app, then say "register"."""
        for status, body in (await self.install(), await self.say("register")):
            if status != 200:
                raise TeamsError(f"agent {self.n}: register answered {status}: "
                                 f"{str(body)[:200]}", status)
        if self.confirm_registration:
            await eventually(lambda: any("You are registered" in (t or "")
                                         for t in self.connector.texts(self.conversation_id)))

    async def click(self, verb: str, data: dict[str, Any], *, reply_to: str | None = None,
                    action_id: str | None = None,
                    in_chat: str | None = None) -> dict[str, Any]:
        """Press a card button (a Universal Action) on a card in the personal chat, or in the
        group chat `in_chat`; the card the invoke answered with."""
        action: dict[str, Any] = {"type": "Action.Execute", "verb": verb, "data": data}
        if action_id is not None:
            action["id"] = action_id
        status, body = await self.post(self.activity(
            "invoke", conversation_id=in_chat, group=in_chat is not None, **act.invoke_fields(
                "adaptiveCard/action", {"action": action, "trigger": "manual"}, reply_to)))
        if status != 200 or not isinstance(body, dict) or body.get("statusCode") != 200 \
                or not str(body.get("type", "")).endswith("card.adaptive"):
            raise TeamsError(f"agent {self.n}: {verb} answered {status}: {str(body)[:200]}",
                             status)
        card = dict(body["value"])
        self.invoke_cards.append((verb, card))
        if reply_to is not None:
            self._answered[reply_to] = (self._updates_of(reply_to), card)
        return card

    async def press(self, card: dict[str, Any], verb: str, inputs: dict[str, Any] | None = None,
                    *, reply_to: str | None = None,
                    in_chat: str | None = None) -> dict[str, Any]:
        """Press the card's own button for `verb` with what the agent filled in."""
        action = find_action(card, verb)
        if action is None:
            raise TeamsError(f"agent {self.n}: no {verb!r} button on the card")
        return await self.click(verb, {**action.get("data", {}), **(inputs or {})},
                                reply_to=reply_to, action_id=action.get("id"), in_chat=in_chat)

    async def accept(self, invitation: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Press Accept on an invitation (an entry of `buttons("accept")`): the session id and
        the card the invoke answered with."""
        action = find_action(invitation["card"], "accept")
        if action is None:
            raise TeamsError(f"agent {self.n}: no Accept button on the invitation")
        card = await self.click("accept", action["data"], reply_to=invitation["id"])
        return str(action["data"]["session_id"]), card

    # -- what the agent sees ----------------------------------------------------------------

    def activities(self) -> list[dict[str, Any]]:
        return list(self.connector.activities.get(self.conversation_id, []))

    def texts(self) -> list[str]:
        return [str(a["text"]) for a in self.activities() if a.get("text")]

    def card(self, activity_id: str) -> dict[str, Any] | None:
        """A card this agent received, by activity id, as Teams shows it: the latest version,
        or the card an action on it answered with when no update came after."""
        answered = self._answered.get(activity_id)
        if answered is not None and self._updates_of(activity_id) == answered[0]:
            return answered[1]
        return card_of(self.connector.latest.get(activity_id))

    def stored_card(self, activity_id: str) -> dict[str, Any] | None:
        """The latest version the Bot Connector holds (what the agent's other clients load)."""
        return card_of(self.connector.latest.get(activity_id))

    def _updates_of(self, activity_id: str) -> int:
        return sum(aid == activity_id for _, aid, _ in self.connector.updates)

    def cards(self) -> list[dict[str, Any]]:
        """{"id", "card"}: the latest version of every card posted to this agent, in order."""
        found = []
        for activity in self.activities():
            if card_of(activity) is not None:
                found.append({"id": activity["id"], "card": self.card(activity["id"])
                              or card_of(activity)})
        return found

    def buttons(self, verb: str) -> list[dict[str, Any]]:
        """`cards()` that carry an Action.Execute with this verb."""
        return [c for c in self.cards() if find_action(c["card"], verb) is not None]

    def cards_with(self, verb: str) -> list[tuple[str, dict[str, Any]]]:
        """(activity id, latest card) of this agent's cards offering an Action.Execute verb."""
        return [(c["id"], c["card"]) for c in self.buttons(verb)]

    def card_versions(self, activity_id: str) -> list[dict[str, Any] | None]:
        """Every version of one card in the order the connector received them."""
        versions = [card_of(a) for a in self.activities()
                    if a.get("id") == activity_id and card_of(a) is not None]
        versions += [card_of(stored) for conversation, aid, stored in self.connector.updates
                     if conversation == self.conversation_id and aid == activity_id]
        return versions
