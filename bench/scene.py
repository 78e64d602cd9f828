"""What the simulated customers and agents share: the chats, who has which, and the clock.

The connector stand-in calls :meth:`Scene.on_activity` the moment an activity arrives; the
arrival times of invitations and relayed messages are taken there, before any agent reacts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.stats import Samples
from tests.support.cards import card_of, find_action

if TYPE_CHECKING:
    from bench.agents import AgentSim

LABEL = re.compile(r"Cust(\d+)\b")
RELAYED = re.compile(r"^Cust(\d+): (c\d+-\d+)$")
CUSTOMER_TEXT = re.compile(r"\bc\d+-\d+\b")
TENANT = "bench-tenant"
BOT_ID = "28:switchboard-bench"


def now() -> float:
    return time.monotonic()


@dataclass
class Chat:
    """One website chat from the customer's POST to the saved wrap-up."""

    n: int
    tag: str  # the load step it belongs to, e.g. "invite@50" / "relay@200"
    created_at: float = 0.0  # just before the customer's POST /chats
    agent: AgentSim | None = None
    accepted: asyncio.Event = field(default_factory=asyncio.Event)
    chatting: asyncio.Event = field(default_factory=asyncio.Event)  # the chatroom header came
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # the widget showed the end
    finishing: bool = False  # the agent is terminating
    done: asyncio.Event = field(default_factory=asyncio.Event)  # wrap-up saved
    stop: asyncio.Event = field(default_factory=asyncio.Event)  # the customer should stop
    customer_sent: dict[str, float] = field(default_factory=dict)  # text -> send time
    final_count: int | None = None  # set once the customer sent its last message
    delivered: Counter[str] = field(default_factory=Counter)  # customer texts in the chatroom
    agent_sent: dict[str, float] = field(default_factory=dict)
    widget_got: Counter[str] = field(default_factory=Counter)
    invitations: int = 0
    # Each invitation card as it arrived: (agent's conversation, the offer's session id).
    offers: list[tuple[str, str]] = field(default_factory=list)
    done_at: float = 0.0
    abandoned: bool = False  # not finished in time: the driver gave up on it
    keep_open: bool = False  # after its last message the customer stays, the agent waits
    chat_id: str = ""
    token: str = ""

    @property
    def label(self) -> str:
        return f"Cust{self.n}"


class Scene:
    def __init__(self, service_url: str) -> None:
        self.service_url = service_url
        self.samples = Samples()
        self.chats: dict[int, Chat] = {}
        self.agents: dict[str, AgentSim] = {}  # by personal conversation id
        self.recording = True  # latency samples are kept only inside measurement windows
        self.relay_tag = ""  # the series message latencies go to now, e.g. "200" (open chats)
        self.censored: Counter[str] = Counter()  # samples that are lower bounds (never came)
        self.last_delivery = now()

    def new_chat(self, tag: str) -> Chat:
        chat = Chat(len(self.chats) + 1, tag)
        self.chats[chat.n] = chat
        return chat

    def record(self, series: str, seconds: float) -> None:
        if self.recording:
            self.samples.add(series, seconds)

    # -- the connector stand-in's listener ------------------------------------------------

    def on_activity(self, method: str, cid: str, activity: dict[str, Any], at: float) -> None:
        self.last_delivery = at
        agent = self.agents.get(cid)
        if agent is None:
            return
        card = card_of(activity)
        if method == "POST" and card is not None:
            dumped = json.dumps(card, ensure_ascii=False)
            accept = find_action(card, "accept")
            label = LABEL.search(dumped)
            chat = self.chats.get(int(label.group(1))) if label else None
            if accept is not None and chat is not None:
                chat.invitations += 1
                chat.offers.append((cid, str((accept.get("data") or {}).get("session_id"))))
                if chat.invitations == 1:
                    self.record(f"invite@{chat.tag}", at - chat.created_at)
                else:
                    self.samples.error(f"{chat.label}: invitation #{chat.invitations}")
                agent.inbox.put_nowait(("invitation", activity, chat))
                return
            if " ¦ " in dumped and chat is not None:  # the chatroom header with the transcript
                for text in CUSTOMER_TEXT.findall(dumped):
                    if text in chat.customer_sent:
                        chat.delivered[text] += 1
                agent.inbox.put_nowait(("header", activity, chat))
                return
        text = activity.get("text")
        if method == "POST" and isinstance(text, str):
            match = RELAYED.match(text)
            if match is not None:
                chat = self.chats.get(int(match.group(1)))
                if chat is not None:
                    sent = chat.customer_sent.get(match.group(2))
                    if sent is not None:
                        if not chat.delivered[match.group(2)]:
                            self.record(f"relay@{self.relay_tag}", at - sent)
                        chat.delivered[match.group(2)] += 1
                    agent.inbox.put_nowait(("relayed", match.group(2), chat))


async def wait_all(events: list[asyncio.Event], timeout: float) -> None:
    """Until every event is set, or `timeout` seconds have passed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout)


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait until each has ended."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
