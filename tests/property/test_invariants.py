"""Random sequences of use cases against the real SQLite store: the invariants hold after each step.

The machine drives two services (a direct one with after-call work, codes and two IM sessions
per agent; a broadcast one to two agents without after-call work) and four agents through
creates and website chats, customer messages, answers, stale clicks, time (ring timeouts, RONA,
after-call work, queue expiry, idle chats, the stale-session sweep), cancels, terminations,
transfers, chatrooms opened or failed, after-call work ended or extended, wrap-ups, duty
switches, RONA resets and (un)registration. Domain refusals are legal answers; any other
exception is a failure. After every step the whole store is read back and checked: one
connection per task, capacity, offers only to available agents (checked on the agent row the
offer replaced, and against the state before the step), engagements agree with sessions,
finished tasks are final, everything that waits has its timer, the customer is told once how
the chat ended, and the event log replays to the stored state.

Three known bugs are tolerated by the main machine, each precisely and each shown by a strict
xfail (a deterministic test, and the same machine without that tolerance) at the end.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bot.bootstrap import build_engine
from bot.domain import events as ev
from bot.domain.agent import Agent, AgentState, Engagement, derive_state
from bot.domain.customer import Customer
from bot.domain.errors import Refused
from bot.domain.events import Event
from bot.domain.message import ChatMessage, Kind, Sender
from bot.domain.routing import held_back, next_hold_end
from bot.domain.service import Catalog, Modality
from bot.domain.session import Phase, Session, SessionResult
from bot.domain.task import Task, TaskResult, TaskState
from bot.domain.timers import (
    ACW_END,
    DECLINE_HOLD,
    IDLE_TIMEOUT,
    QUEUE_TIMEOUT,
    RING_TIMEOUT,
    RONA_RESET,
    timer_id,
)
from bot.services import agents as agent_cases
from bot.services.chats import INTERACT
from bot.services.context import Ctx
from bot.services.conversation import arm_idle_timeout, customer_message
from bot.services.dispatch import create_task
from bot.services.engine import Engine
from bot.services.lifecycle import (
    cancel_task,
    chat_failed,
    chat_opened,
    end_acw,
    extend_acw,
    stale_sweep,
    terminate,
    transfer,
)
from bot.services.offers import accept, decline
from bot.services.wrapup import save_wrapup
from bot.storage.codec import decode
from bot.storage.sqlite import SqliteStore, SqliteUnitOfWork
from bot.storage.sqlite_repos import SqliteAgents
from tests.builders import catalog
from tests.fakes import FakeClock
from tests.scenario import add_agent, advance, agent_state, load_task, ringing

SALES_CODES = ("won", "lost")
SALES_SECONDARY = ("callback",)


def build_catalog() -> Catalog:
    """Two services that differ in everything the invariants care about."""
    return catalog(
        {
            "id": "sales",
            "members": ["a1@example.com", "a2@example.com", "a3@example.com"],
            "modalities": ["im", "email"],
            "distribution": {"mode": "direct", "ring_timeout": "10s", "rona_reset": "20s",
                             "max_queue_time": "90s"},
            "acw": {"duration": "15s", "allow_early_end": True, "max_extension": "30s"},
            "capacity": {"im": 2},
            "codes": {"primary": list(SALES_CODES), "secondary": list(SALES_SECONDARY)},
            "interact": {"idle_timeout": "2m"},
        },
        {
            "id": "support",
            "members": ["a2@example.com", "a3@example.com", "a4@example.com"],
            "modalities": ["im"],
            "distribution": {"mode": "broadcast", "broadcast_size": 2, "ring_timeout": "8s",
                             "max_queue_time": "60s", "priority": 1},
            "acw": {"duration": "0s"},
            "interact": {"idle_timeout": "150s"},
        },
        settings={
            "profiles": [{"name": "Duty"}, {"name": "Break", "on_duty": False}],
            "stale_session_after": "3m",
            "stale_sweep_every": "1m",
        },
    )


AGENTS = ("user-1", "user-2", "user-3", "user-4")
FINAL_EVENTS = (ev.TASK_DONE, ev.TASK_CANCELLED, ev.TASK_EXPIRED)
FINAL_STATES = {
    TaskState.DONE: TaskResult.HANDLED,
    TaskState.CANCELLED: TaskResult.CANCELLED,
    TaskState.EXPIRED: TaskResult.NOT_HANDLED,
}


# -- watching every offer at the moment it is written --------------------------------------


@dataclass
class OfferWatch:
    """Offers seen being written, with the agent row as it was just before the write."""

    catalog: Catalog
    clock: FakeClock
    violations: list[str] = field(default_factory=list)
    seen: int = 0  # offers observed: one per session, or the watch is not watching

    def offers(self, before: Agent | None, after: Agent) -> list[list[str]]:
        """`check` of each offer a write adds: engagements ringing in `after`, not in `before`."""
        old = {e.session_id for e in (before.engagements if before else [])
               if e.phase == "ringing"}
        return [self.check(before, e) for e in after.engagements
                if e.phase == "ringing" and e.session_id not in old]

    def committed(self, pending: list[list[str]]) -> None:
        """Count the offers of a unit of work that committed: only what was committed counts
        (a rolled-back unit of work, or one that lost its race, offered nothing)."""
        for why in pending:
            self.seen += 1
            self.violations += why

    def check(self, before: Agent | None, engagement: Engagement) -> list[str]:
        """Why the agent could not take this offer (empty when it could), from first rules."""
        if before is None:
            return [f"offer {engagement.session_id} to an agent with no row"]
        now = self.clock.now()
        why: list[str] = []
        if not before.registered:
            why.append("unregistered")
        if self.catalog.profile_on_duty(before.profile) is not True:
            why.append(f"not on duty ({before.profile})")
        if before.rona_until is not None and before.rona_until > now:
            why.append(f"RONA until {before.rona_until}")
        if engagement.service_id not in before.services:
            why.append(f"not a member of {engagement.service_id}")
        for e in before.engagements:
            if e.phase in ("ringing", "acw"):
                why.append(f"already {e.phase} ({e.session_id})")
        for e in before.engagements:
            if e.phase != "connected":
                continue
            same = sum(1 for o in before.engagements
                       if o.phase == "connected" and o.modality == e.modality)
            if same >= self.catalog.service(e.service_id).capacity_for(e.modality):
                why.append(f"busy at capacity of {e.service_id}/{e.modality}")
        connected = sum(1 for e in before.engagements
                        if e.phase == "connected" and e.modality == engagement.modality)
        limit = self.catalog.service(engagement.service_id).capacity_for(engagement.modality)
        if connected >= limit:
            why.append(f"{connected} connected {engagement.modality} >= {limit}")
        return [f"offer {engagement.session_id} to {before.id} who was {w}" for w in why]


class WatchedAgents(SqliteAgents):
    """The real agent repository; before each write it reads the row the write replaces."""

    def __init__(self, uow: WatchedUnitOfWork) -> None:
        super().__init__(uow)
        self.watched = uow

    async def save(self, entity: Agent) -> None:
        rows = await self.uow.fetch("SELECT data FROM agents WHERE id = ?", (entity.id,))
        before = decode(Agent, json.loads(rows[0][0])) if rows else None
        await super().save(entity)
        self.watched.pending += self.watched.watch.offers(before, entity)


class WatchedUnitOfWork(SqliteUnitOfWork):
    def __init__(self, store: WatchedStore) -> None:
        super().__init__(store)
        self.watch = store.watch
        self.pending: list[list[str]] = []
        self.agents = WatchedAgents(self)

    async def commit(self) -> None:
        await super().commit()
        self.watch.committed(self.pending)
        self.pending = []


class WatchedStore(SqliteStore):
    def __init__(self, path: str | Path, watch: OfferWatch) -> None:
        super().__init__(path)
        self.watch = watch

    def unit_of_work(self) -> WatchedUnitOfWork:
        return WatchedUnitOfWork(self)


# -- reading the whole store back -----------------------------------------------------------


@dataclass
class Snapshot:
    now: datetime
    tasks: dict[str, Task]
    sessions: dict[str, Session]
    agents: dict[str, Agent]
    events: list[Event]
    timers: dict[str, datetime]
    messages: dict[str, list[ChatMessage]]  # the customer's side of each task, in order

    def ordered(self) -> list[Session]:
        """Sessions in the order they were offered: stable between runs (ids are random)."""
        offered = {e.session_id: e.seq for e in self.events if e.name == ev.OFFER_CREATED}
        return sorted(self.sessions.values(), key=lambda s: offered[s.id])

    def pick(self, data: st.DataObject, sessions: list[Session]) -> Session:
        """Draw one of the sessions by position (short, readable falsifying examples)."""
        session = sessions[data.draw(st.integers(0, len(sessions) - 1))]
        note(f"  -> session {session.task_id}/{session.agent_id} ({session.phase.value})")
        return session

    def website_chats(self) -> list[str]:
        return sorted(t.id for t in self.tasks.values() if t.channel.get("kind") == INTERACT)

    def phase(self, phase: Phase) -> list[Session]:
        return [s for s in self.ordered() if s.phase is phase]

    def not_live(self) -> list[Session]:
        return [s for s in self.ordered() if not s.live]


async def read_all(ctx: Ctx) -> Snapshot:
    uow = ctx.uow
    assert isinstance(uow, SqliteUnitOfWork)

    async def rows(table: str) -> list[Any]:
        return await uow.fetch(f"SELECT id, version, data FROM {table}")

    def load(cls: type[Any], row: Any) -> Any:
        entity = decode(cls, json.loads(row[2]))
        entity.version = row[1]
        return entity

    tasks = {r[0]: load(Task, r) for r in await rows("tasks")}
    sessions = {r[0]: load(Session, r) for r in await rows("sessions")}
    agents = {r[0]: load(Agent, r) for r in await rows("agents")}
    timers = {r[0]: r[1] for r in await uow.fetch("SELECT id, due_at FROM timers")}
    messages = {task_id: await uow.messages.after(task_id, 0, 10**6) for task_id in tasks}
    return Snapshot(
        now=ctx.now,
        tasks=tasks,
        sessions=sessions,
        agents=agents,
        events=await uow.events.after(0, 10**9),
        timers={k: datetime.fromtimestamp(v, ctx.now.tzinfo) for k, v in timers.items()},
        messages=messages,
    )


async def open_website_chat(ctx: Ctx, service_id: str, customer: Customer, text: str, *,
                            task_id: str, priority: int | None) -> Task:
    """What bot/services/chats.py open_chat does, with an id of our own (repeatable runs)."""
    task = await create_task(ctx, service_id, Modality.IM, customer=customer,
                             content={"text": text.strip()}, priority=priority,
                             task_id=task_id, channel={"kind": INTERACT})
    if text.strip():
        await customer_message(ctx, task.id, text)
    else:
        await arm_idle_timeout(ctx, task)
    return task


# -- the machine ----------------------------------------------------------------------------


class SwitchboardMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp(prefix="switchboard-prop-"))
        self.clock = FakeClock()
        self.catalog = build_catalog()
        self.watch = OfferWatch(self.catalog, self.clock)
        self.store = WatchedStore(self.tmp / "switchboard.db", self.watch)
        self.engine = build_engine(self.store, self.clock, self.catalog)
        self.counter = 0
        self.step: tuple[str, str | None] = ("setup", None)  # what the last step did, to whom

        async def setup() -> None:
            await self.store.open()
            for n in range(1, 5):
                await add_agent(self.engine, n)
            await self.engine.run(stale_sweep)  # arms the recurring sweep, as the app does

        self.loop.run_until_complete(setup())
        self.snap = self._read()
        self.previous = self.snap

    def teardown(self) -> None:
        try:
            self.loop.run_until_complete(self.store.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- plumbing --------------------------------------------------------------------------

    def _read(self) -> Snapshot:
        return self.loop.run_until_complete(self.engine.run(read_all))

    def _run(self, kind: str, agent: str | None, use_case: Any, *args: Any, **kwargs: Any) -> None:
        self.step = (kind, agent)
        note(f"{kind} {agent or ''} {args} {kwargs}")
        try:
            self.loop.run_until_complete(self.engine.run(use_case, *args, **kwargs))
        except Refused as exc:
            event(f"{kind}: refused {type(exc).__name__}/{exc.code}")
        else:
            event(f"{kind}: ok")
        self._after()

    def _after(self) -> None:
        self.previous = self.snap
        self.snap = self._read()
        seen = {e.seq for e in self.previous.events}
        for e in self.snap.events:  # what happened, for --hypothesis-show-statistics
            if e.seq not in seen and e.name != ev.AGENT_STATE_CHANGED:
                event(f"log: {e.name} {e.data.get('by', '')}".strip())

    # -- rules -----------------------------------------------------------------------------

    @rule(kind=st.sampled_from(["sales/im", "sales/im", "sales/email", "support/im",
                                "support/im", "support/email"]),
          priority=st.none() | st.integers(-1, 3), named=st.booleans(),
          website=st.sampled_from([None, None, "", "Hello there"]))
    def create(self, kind: str, priority: int | None, named: bool,
               website: str | None) -> None:
        """A task from an automation or email, or (website set) a chat from the website."""
        service, modality = kind.split("/")
        self.counter += 1
        customer = Customer(name=f"Customer {self.counter}" if named else "")
        # Our own task ids: the queue breaks ties on the id, and runs must be repeatable.
        task_id = f"t{self.counter:03d}"
        if website is None or modality != "im":
            self._run("create", None, create_task, service, Modality(modality),
                      customer=customer, content={"text": "Hello"}, priority=priority,
                      task_id=task_id)
        else:
            self._run("open_chat", None, open_website_chat, service, customer, website,
                      task_id=task_id, priority=priority)

    @precondition(lambda self: self.snap.website_chats())
    @rule(data=st.data(), text=st.sampled_from(["Are you there?", "Hello?", "  ", "too long"]))
    def customer_writes(self, data: st.DataObject, text: str) -> None:
        """The customer writes in a website chat (which may have ended: refused)."""
        task = data.draw(st.sampled_from(self.snap.website_chats()))
        text = "x" * 4001 if text == "too long" else text
        self._run("customer_message", None, customer_message, task, text)

    @precondition(lambda self: self.snap.phase(Phase.CONNECTED))
    @rule(data=st.data(), opened=st.booleans())
    def chatroom(self, data: st.DataObject, opened: bool) -> None:
        """The effect that creates the chatroom reports back: opened, or failed (requeue)."""
        session = self.snap.pick(data, self.snap.phase(Phase.CONNECTED))
        if opened:
            self._run("chat_opened", session.agent_id, chat_opened, session.id,
                      f"chat-{session.task_id}", None)
        else:
            self._run("chat_failed", session.agent_id, chat_failed, session.id,
                      "The chatroom could not be created.")

    @precondition(lambda self: self.snap.phase(Phase.RINGING))
    @rule(data=st.data(), choice=st.sampled_from(["accept"] * 6 + ["decline"] * 3 + ["other"]))
    def answer(self, data: st.DataObject, choice: str) -> None:
        """The ringing agent accepts or declines; now and then someone else clicks the card."""
        session = self.snap.pick(data, self.snap.phase(Phase.RINGING))
        if choice == "other":
            agent = data.draw(st.sampled_from(AGENTS))
            self._run("accept", agent, accept, session.id, agent)
        else:
            use_case = accept if choice == "accept" else decline
            self._run(choice, session.agent_id, use_case, session.id, session.agent_id)

    @precondition(lambda self: self.snap.sessions)
    @rule(data=st.data(), accepting=st.booleans())
    def stale_click(self, data: st.DataObject, accepting: bool) -> None:
        """Accept or decline an offer that may have ended long ago (a click on an old card)."""
        session = self.snap.pick(data, self.snap.ordered())
        use_case = accept if accepting else decline
        self._run("stale_click", session.agent_id, use_case, session.id, session.agent_id)

    @rule(seconds=st.one_of(st.integers(1, 20), st.integers(1, 20),
                            st.sampled_from([30, 60, 100, 200])))
    def advance(self, seconds: int) -> None:
        """Time passes; the scheduler fires what is due (`fire_until_quiet`)."""
        self.step = ("advance", None)
        note(f"advance {seconds}s{self.fires}")
        self.clock.advance(seconds)
        fired = sum(self.loop.run_until_complete(self.fire_until_quiet()))
        event(f"advance: fired {min(fired, 5)}{'+' if fired >= 5 else ''}")
        self._after()

    fires = ""  # how the note of an `advance` says who fires

    async def fire_until_quiet(self) -> list[int]:
        """Fire what is due until nothing is; how many timers each instance fired."""
        total = 0
        for _ in range(500):
            fired = await self.engine.jobs.fire_due()
            if not fired:
                return [total]
            total += fired
        raise AssertionError("timers keep firing at one instant")

    @precondition(lambda self: self.snap.tasks)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """The customer leaves (any task, also one that ended: that is a no-op)."""
        task = data.draw(st.sampled_from(sorted(self.snap.tasks)))
        self._run("cancel", None, cancel_task, task)

    @precondition(lambda self: self.snap.phase(Phase.CONNECTED))
    @rule(data=st.data(), how=st.sampled_from(["agent", "agent", "customer", "transfer"]),
          same_service=st.integers(0, 4))
    def end_connection(self, data: st.DataObject, how: str, same_service: int) -> None:
        session = self.snap.pick(data, self.snap.phase(Phase.CONNECTED))
        other = "support" if session.service_id == "sales" else "sales"
        to = session.service_id if same_service == 0 else other
        if how == "agent":
            self._run("terminate", session.agent_id, terminate, session.id,
                      agent_id=session.agent_id)
        elif how == "customer":
            self._run("terminate", None, terminate, session.id, by="customer")
        else:
            self._run("transfer", session.agent_id, transfer, session.id, to,
                      agent_id=session.agent_id)

    @precondition(lambda self: self.snap.phase(Phase.ACW))
    @rule(data=st.data(), extend=st.booleans())
    def after_call_work(self, data: st.DataObject, extend: bool) -> None:
        session = self.snap.pick(data, self.snap.phase(Phase.ACW))
        use_case = extend_acw if extend else end_acw
        self._run("extend_acw" if extend else "end_acw", session.agent_id, use_case,
                  session.id, agent_id=session.agent_id)

    @precondition(lambda self: self.snap.sessions)
    @rule(data=st.data(),
          primary=st.sampled_from([None, *SALES_CODES, *SALES_CODES, "bogus"]),
          secondary=st.sampled_from([None, None, *SALES_SECONDARY, "bogus"]),
          tags=st.lists(st.sampled_from(["vip", "VIP", " refund ", "", "x" * 51]), max_size=3))
    def save(self, data: st.DataObject, primary: str | None, secondary: str | None,
             tags: list[str]) -> None:
        """Save a wrap-up, mostly of a session that ended, sometimes of one still live."""
        candidates = self.snap.not_live() or self.snap.ordered()
        if data.draw(st.integers(0, 4)) == 0:
            candidates = self.snap.ordered()
        session = self.snap.pick(data, candidates)
        self._run("save", session.agent_id, save_wrapup, session.id, session.agent_id,
                  primary=primary, secondary=secondary, tags=tags)

    @rule(agent=st.sampled_from(AGENTS),
          action=st.sampled_from(["Duty", "Duty", "Off Duty", "Break", "reset_rona",
                                  "reset_rona", "register", "unregister"]))
    def agent_change(self, agent: str, action: str) -> None:
        """Duty switches, RONA resets and (un)registration."""
        if action == "reset_rona":
            self._run("reset_rona", agent, agent_cases.reset_rona, agent)
        elif action == "register":
            n = agent.split("-")[1]
            self._run("register", agent, agent_cases.register, agent, name=f"Agent {n}",
                      upn=f"a{n}@example.com", object_id=None)
        elif action == "unregister":
            self._run("unregister", agent, agent_cases.unregister, agent)
        else:
            kind = "duty_on" if action == "Duty" else "duty_off"
            self._run(kind, agent, agent_cases.set_duty, agent, action)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def a_task_is_connected_to_at_most_one_agent(self) -> None:
        snap = self.snap
        for task in snap.tasks.values():
            connected = [s for s in snap.sessions.values()
                         if s.task_id == task.id and s.phase is Phase.CONNECTED]
            assert len(connected) <= 1, f"task {task.id} connected {len(connected)} times"
            if connected:
                [session] = connected
                assert task.state is TaskState.CONNECTED, (task.state, session.id)
                assert task.session_id == session.id, (task.session_id, session.id)
                assert task.agent_id == session.agent_id
            if task.state is TaskState.CONNECTED:
                assert connected, f"task {task.id} connected without a connected session"
            if task.state is TaskState.WRAPUP:
                owner = snap.sessions.get(task.session_id or "")
                assert owner is not None and owner.phase is Phase.ACW, (
                    f"task {task.id} in wrap-up but its session is "
                    f"{owner.phase if owner else None}")

    @invariant()
    def ringing_sessions_are_the_tasks_open_offers(self) -> None:
        snap = self.snap
        for task in snap.tasks.values():
            ringing = {s.id for s in snap.sessions.values()
                       if s.task_id == task.id and s.phase is Phase.RINGING}
            assert set(task.ringing) == ringing, (task.id, task.state, task.ringing, ringing)
            assert len(task.ringing) == len(set(task.ringing)), task.ringing
            assert (task.state is TaskState.RINGING) == bool(ringing), (task.state, ringing)
            if ringing:
                agents = [snap.sessions[s].agent_id for s in ringing]
                assert len(agents) == len(set(agents)), f"one task rings an agent twice: {agents}"
                assert all(snap.sessions[s].service_id == task.service_id for s in ringing)

    @invariant()
    def no_agent_exceeds_capacity_or_rings_twice(self) -> None:
        for agent in self.snap.agents.values():
            ringing = [e for e in agent.engagements if e.phase == "ringing"]
            assert len(ringing) <= 1, f"{agent.id} rings {len(ringing)} times"
            for e in agent.engagements:
                if e.phase != "connected":
                    continue
                same = sum(1 for o in agent.engagements
                           if o.phase == "connected" and o.modality == e.modality)
                limit = self.catalog.service(e.service_id).capacity_for(e.modality)
                assert same <= limit, f"{agent.id}: {same} connected {e.modality} > {limit}"
            ids = [e.session_id for e in agent.engagements]
            assert len(ids) == len(set(ids)), f"{agent.id} engaged twice in one session"

    @invariant()
    def engagements_and_sessions_agree(self) -> None:
        snap = self.snap
        engaged: dict[str, tuple[str, Engagement]] = {}
        for agent in snap.agents.values():
            for e in agent.engagements:
                engaged[e.session_id] = (agent.id, e)
        for session in snap.sessions.values():
            if session.phase is Phase.ENDED:
                assert session.id not in engaged, (
                    f"ended session {session.id} ({session.result}) still engages "
                    f"{engaged[session.id][0]}")
                continue
            assert session.id in engaged, (
                f"{session.phase} session {session.id} missing from {session.agent_id}")
            agent_id, e = engaged[session.id]
            assert agent_id == session.agent_id
            assert e.phase == session.phase.value, (session.id, e.phase, session.phase)
            assert (e.task_id, e.service_id, e.modality) == (
                session.task_id, session.service_id, session.modality)
        for session_id, (agent_id, _) in engaged.items():
            assert session_id in snap.sessions, f"{agent_id} engaged in unknown {session_id}"

    @invariant()
    def sessions_have_one_result(self) -> None:
        saves = Counter(e.session_id for e in self.snap.events if e.name == ev.SESSION_SAVED)
        for session in self.snap.sessions.values():
            if session.phase is Phase.RINGING:
                assert session.result is None, (session.id, session.result)
            elif session.phase in (Phase.CONNECTED, Phase.ACW):
                assert session.result is SessionResult.ACCEPTED, (session.id, session.result)
            else:
                assert session.result is not None, f"ended session {session.id} has no result"
            assert saves[session.id] == (1 if session.saved_at else 0), (
                f"session {session.id} saved {saves[session.id]} times, "
                f"saved_at={session.saved_at}")
            if session.saved_at is not None:  # codes and tags are saved from Accept on
                assert session.phase is not Phase.RINGING
                assert session.result is not None
                codes = self.catalog.service(session.service_id).codes
                if codes.required:
                    assert session.primary_code in codes.primary

    @invariant()
    def finished_tasks_are_final(self) -> None:
        finals = Counter(e.task_id for e in self.snap.events if e.name in FINAL_EVENTS)
        for task in self.snap.tasks.values():
            if not task.state.finished:
                assert task.result is None, (task.id, task.state, task.result)
                assert finals[task.id] == 0, (task.id, task.state, finals[task.id])
                continue
            assert task.result is FINAL_STATES[task.state], (task.id, task.state, task.result)
            assert finals[task.id] == 1, f"{task.id} has {finals[task.id]} final events"
            assert task.ended_at is not None
            assert not task.ringing
            live = [s.id for s in self.snap.sessions.values()
                    if s.task_id == task.id and s.live]
            assert not live, f"finished task {task.id} ({task.state}) has live sessions {live}"

    @invariant()
    def everything_that_waits_has_a_timer(self) -> None:
        snap = self.snap
        for session in snap.sessions.values():
            if session.phase is Phase.RINGING:
                due = snap.timers.get(timer_id(RING_TIMEOUT, session.id))
                assert due == session.ring_until, (session.id, due, session.ring_until)
            if session.phase is Phase.ACW:
                due = snap.timers.get(timer_id(ACW_END, session.id))
                assert due == session.acw_until, (session.id, due, session.acw_until)
        for task in snap.tasks.values():
            due = snap.timers.get(timer_id(QUEUE_TIMEOUT, task.id))
            if task.state in (TaskState.QUEUED, TaskState.RINGING):
                limit = self.catalog.service(task.service_id).distribution.max_queue_time
                assert due == task.enqueued_at + limit, (task.id, task.state, due)
            else:
                assert due is None, f"{task.state} task {task.id} keeps a queue timer"
            hold_end = next_hold_end(task, self.catalog, snap.now)
            if task.state is TaskState.QUEUED and hold_end is not None:
                due = snap.timers.get(timer_id(DECLINE_HOLD, task.id))
                assert due == hold_end, (task.id, due, hold_end)
        for agent in snap.agents.values():
            if agent.rona_until is not None:
                due = snap.timers.get(timer_id(RONA_RESET, agent.id))
                assert due == agent.rona_until, (agent.id, due, agent.rona_until)
        for task in snap.tasks.values():
            website = task.channel.get("kind") == INTERACT
            idle = timer_id(IDLE_TIMEOUT, task.id) in snap.timers
            assert idle == (website and task.state.live), (
                f"{task.state} {'website' if website else 'other'} task {task.id}: "
                f"idle timer {'set' if idle else 'missing'}")

    @invariant()
    def the_customer_is_told_once_how_it_ended(self) -> None:
        snap = self.snap
        for task in snap.tasks.values():
            rows = snap.messages[task.id]
            if task.modality is not Modality.IM:
                assert not [m for m in rows if m.sender is Sender.SYSTEM], (
                    f"{task.modality} task {task.id} has chat status rows")
                continue
            numbers = [m.seq for m in rows]
            if task.state.finished:
                # Concluded: the chat lines no opted-in hop keeps are gone (issue 20), the rows
                # that told the customer something stay, and the numbering never went back.
                assert numbers == sorted(set(numbers)), task.id
                kept = any(s.store_context for s in snap.sessions.values()
                           if s.task_id == task.id)
                lines = [m for m in rows if m.kind is Kind.MESSAGE]
                assert kept or not lines, f"concluded {task.id} keeps {len(lines)} chat lines"
            else:
                assert numbers == list(range(1, len(rows) + 1)), task.id
            ends = [m for m in rows if m.kind in (Kind.ENDED, Kind.EXPIRED)]
            if task.state.live:
                assert ends == [], f"live task {task.id} told the customer it ended"
            else:
                assert len(ends) == 1, f"{task.state} task {task.id} told {len(ends)} endings"
                assert (ends[0].kind is Kind.EXPIRED) == (task.state is TaskState.EXPIRED)
                assert rows[-1] is ends[0], f"rows after the end of {task.id}: {rows[-1]}"
            accepted = [s for s in snap.sessions.values()  # also those whose chat failed
                        if s.task_id == task.id and s.connected_at is not None]
            told = [m for m in rows if m.kind is Kind.ACCEPTED]
            assert len(told) == len(accepted), (task.id, len(told), len(accepted))

    @invariant()
    def no_task_waits_while_a_member_could_take_it(self) -> None:
        snap = self.snap
        for task in snap.tasks.values():
            if task.state is not TaskState.QUEUED:
                continue
            # A recent decliner waits while another agent may still take the task.
            held = held_back(task, snap.agents.values(), self.catalog, snap.now)
            for agent in snap.agents.values():
                if agent.id in held:
                    continue
                why = self.watch.check(agent, Engagement(
                    session_id="(queued)", task_id=task.id, service_id=task.service_id,
                    modality=task.modality, phase="ringing"))
                assert why, (f"queued {task.service_id}/{task.modality} task {task.id} waits "
                             f"while {agent.id} could take it")

    @invariant()
    def offers_went_only_to_available_agents(self) -> None:
        # At the moment of the write (the agent row just before the offer was added) ...
        assert not self.watch.violations, self.watch.violations
        assert self.watch.seen == len(self.snap.sessions), "an offer was written unobserved"
        # ... and, independently, against the state before the step.
        before, after = self.previous, self.snap
        kind, actor = self.step
        for session in after.sessions.values():
            if session.id in before.sessions:
                continue
            agent = before.agents[session.agent_id]
            me = actor == agent.id
            assert agent.registered or (me and kind == "register"), (session.id, kind)
            assert self.catalog.profile_on_duty(agent.profile) or (me and kind == "duty_on"), (
                session.id, agent.profile, kind)
            if agent.rona_until is not None and agent.rona_until > before.now:
                assert (me and kind == "reset_rona") or (
                    kind == "advance" and agent.rona_until <= after.now), (
                    f"{session.id} offered to {agent.id} in RONA until {agent.rona_until}")
            assert session.service_id in agent.services
            for e in agent.engagements:
                later = after.sessions[e.session_id]
                if e.phase in ("ringing", "acw"):
                    assert later.phase.value != e.phase, (
                        f"{session.id} offered to {agent.id} still {e.phase} in {e.session_id}")
            still = sum(1 for e in agent.engagements
                        if e.phase == "connected" and e.modality == session.modality
                        and after.sessions[e.session_id].phase is Phase.CONNECTED)
            limit = self.catalog.service(session.service_id).capacity_for(session.modality)
            assert still < limit, f"{session.id} offered to {agent.id} busy with {still}"

    @invariant()
    def the_event_log_replays_to_the_stored_state(self) -> None:
        snap = self.snap
        last_task: dict[str, Event] = {}
        last_session: dict[str, Event] = {}
        seqs = [e.seq for e in snap.events]
        assert seqs == sorted(set(seqs)), "event sequence numbers are not strictly increasing"
        for e in snap.events:
            if e.task_id and "task_state" in e.data:
                last_task[e.task_id] = e
            if e.session_id and "phase" in e.data:
                last_session[e.session_id] = e
        for task in snap.tasks.values():
            assert task.id in last_task, f"no event carries the state of task {task.id}"
            last = last_task[task.id]
            assert last.data["task_state"] == task.state.value, (
                f"task {task.id}: last event {last.name} says {last.data['task_state']}, "
                f"stored {task.state.value}")
            assert last.data.get("task_result") == (task.result.value if task.result else None)
        for agent in snap.agents.values():
            state = AgentState.UNREGISTERED.value  # installed, never registered: no event yet
            for e in snap.events:
                if e.agent_id != agent.id:
                    continue
                if e.name != ev.AGENT_STATE_CHANGED:
                    continue
                assert e.data["previous"] in (state, None), (
                    f"{agent.id}: {e.data['previous']} follows {state} in the log")
                state = e.data["state"]
            stored = derive_state(agent, self.catalog, snap.now).value
            assert state == stored, (
                f"{agent.id}: the log says {state}, the stored agent is {stored}")
        for session in snap.sessions.values():
            assert session.id in last_session, f"no event carries session {session.id}"
            last = last_session[session.id]
            assert last.data["phase"] == session.phase.value, (
                f"session {session.id}: last event {last.name} says {last.data['phase']}, "
                f"stored {session.phase.value}")
            assert last.data.get("result") == (session.result.value if session.result else None)


TestInvariants = SwitchboardMachine.TestCase
TestInvariants.settings = settings(
    max_examples=80,  # about 20 s on two cores; 1000 examples of 60 steps also pass
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


BUG_OFFER_EVENT = (
    "bug: bot/services/dispatch.py offer() emits offer.created with session= only and then sets "
    "task.state = RINGING, so no event records the task's queued->ringing transition: the last "
    "event carrying task_state says 'queued' while the stored task is ringing")
BUG_ACCEPT_DISPATCH = (
    "bug: bot/services/offers.py accept() only redispatches the services of rescinded agents, "
    "never the accepting agent's: an agent left with room for another session (capacity of the "
    "accepted modality > 1) stays available but is not offered the task that waits for them")
BUG_SILENT_RONA_RESET = (
    "bug: the end of RONA by its timer is not logged. bot/services/agents.py rona_expired() "
    "(like any use case run after rona_until) loads the agent through Ctx.agent(), which "
    "remembers derive_state() at ctx.now, when RONA has already run out: save_agent() sees no "
    "change and emits no agent.state_changed, so the log says 'rona' until the agent's next "
    "change, whose 'previous' is then not 'rona' (a manual reset_rona() does emit)")


async def test_queued_to_ringing_is_in_the_event_log(engine: Engine) -> None:
    agent = await add_agent(engine, 1)
    task = await engine.run(create_task, "sales", Modality.IM, customer=Customer(name="Jo"))

    async def read(ctx: Ctx) -> tuple[Task, list[Event]]:
        return await ctx.task(task.id), await ctx.uow.events.for_task(task.id)

    stored, events = await engine.run(read)
    assert stored.state is TaskState.RINGING
    assert [e.agent_id for e in events if e.name == ev.OFFER_CREATED] == [agent]
    carrying = [e for e in events if "task_state" in e.data]
    assert carrying[-1].data["task_state"] == stored.state.value


async def test_accept_offers_a_multi_session_agent_the_next_task(store: SqliteStore,
                                                       clock: FakeClock) -> None:
    services = catalog({"id": "sales", "capacity": {"im": 2}})
    engine = build_engine(store, clock, services)
    agent = await add_agent(engine, 1)
    first = await engine.run(create_task, "sales", Modality.IM, customer=Customer(name="A"))
    second = await engine.run(create_task, "sales", Modality.IM, customer=Customer(name="B"))
    [offer] = await ringing(engine, first.id)
    assert (await load_task(engine, second.id)).state is TaskState.QUEUED  # the agent rings
    await engine.run(accept, offer.id, agent)
    # One of two sessions in use: the waiting task rings the same agent at once.
    assert await agent_state(engine, agent) is AgentState.RINGING
    assert [s.agent_id for s in await ringing(engine, second.id)] == [agent]


def test_machine_catalog_is_as_assumed() -> None:
    """The catalog the machine uses is what the invariants assume."""
    services = build_catalog()
    assert services.service("support").acw.duration == timedelta(0)
    assert services.service("sales").capacity_for(Modality.IM) == 2
    assert services.service("support").distribution.broadcast_size == 2


async def test_rona_reset_by_timer_is_in_the_event_log(engine: Engine,
                                                           clock: FakeClock) -> None:
    agent = await add_agent(engine, 1)
    task = await engine.run(create_task, "sales", Modality.IM, customer=Customer(name="Jo"))
    await advance(engine, clock, 30)  # ring timeout: RONA
    await engine.run(cancel_task, task.id)  # nothing waits, so nothing rings after the reset
    assert await agent_state(engine, agent) is AgentState.RONA
    await advance(engine, clock, 600)  # the RONA reset timer fires
    assert await agent_state(engine, agent) is AgentState.AVAILABLE

    async def log(ctx: Ctx) -> list[Event]:
        return await ctx.uow.events.after(0, 10**9)

    changes = [e.data for e in await engine.run(log)
               if e.name == ev.AGENT_STATE_CHANGED and e.agent_id == agent]
    assert changes[-1] == {"state": "available", "previous": "rona"}, changes
