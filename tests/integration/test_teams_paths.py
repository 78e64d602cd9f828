"""Every way an invitation can end, stale clicks, a restart, tag typeahead and after-call work.

Each test drives the real app over HTTP (the `serve` fixture, tests/support/) and asserts what
the agent's card says: the latest version the Bot Connector stand-in holds and/or the invoke
response.
Every card seen goes to the session's card log and, in the last test, is checked with the
official parser.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.cards import MAX_CARD_BYTES, card_bytes
from bot.domain.customer import Customer
from bot.domain.service import Catalog, Modality
from bot.domain.session import Phase, Session
from bot.domain.task import Task, TaskState
from bot.domain.timers import CARD_SETTLE
from bot.services import lifecycle
from bot.services.context import Ctx
from bot.services.dispatch import create_task
from tests import teams_activities as act
from tests.builders import catalog
from tests.cards.walk import nodes, of_type
from tests.fakes import FakeClock
from tests.standins.connector import ConnectorStandin
from tests.support.cardlog import CardLog
from tests.support.cards import find_action
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually
from tests.support.world import Serve, World

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "tests" / "cards" / "validate_cards.js"
# The one event the parser may report, once per typeahead (see tests/cards/test_validate_node.py).
TEAMS_TYPEAHEAD = 'Property "choices.data" is supported in version 1.6'

def check_seen_cards(seen: list[tuple[str, dict[str, Any]]]) -> None:
    """Validate every distinct card of one test file with the npm parser and the size budget."""
    if not seen:
        pytest.skip("no cards collected: run the whole test file")
    node = shutil.which("node")
    assert node is not None
    unique: dict[str, tuple[str, dict[str, Any]]] = {}
    for label, card in seen:
        unique.setdefault(json.dumps(card, sort_keys=True), (label, card))
    cards = {f"{i}: {label}": card for i, (label, card) in enumerate(unique.values())}
    done = subprocess.run([node, str(VALIDATOR)], input=json.dumps(cards), capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    problems: dict[str, Any] = {}
    for name, card in cards.items():
        found = report[name]
        typeaheads = sum("choices.data" in i for i in of_type(card, "Input.ChoiceSet"))
        events = [e for e in found.get("events", [])
                  if not e["message"].startswith(TEAMS_TYPEAHEAD)]
        issues = {
            "crash": found.get("crash"),
            "events": events,
            "fallbackEvents": [e for e in found.get("fallbackEvents", [])
                               if not e["message"].startswith(TEAMS_TYPEAHEAD)],
            "unknownProperties": found.get("unknownProperties"),
            "executeWithoutFallback": found.get("executeWithoutFallback"),
            "typeaheadEvents": None if len(found.get("events", [])) - len(events) == typeaheads
            else found.get("events"),
            "bytes": card_bytes(card) if card_bytes(card) >= MAX_CARD_BYTES else None,
            "header": None if (card.get("type"), card.get("version")) == ("AdaptiveCard", "1.5")
            else (card.get("type"), card.get("version")),
        }
        issues = {k: v for k, v in issues.items() if v}
        if issues:
            problems[name] = issues
    assert problems == {}, json.dumps(problems, indent=1, ensure_ascii=False)[:6000]
    assert len(cards) >= 20  # the tests really saw a good variety of cards


# -- a running world ----------------------------------------------------------------------------

def services_of(*tables: dict[str, Any]) -> Catalog:
    return catalog(*(tables or ({"id": "sales", "name": "Sales"},
                                {"id": "support", "name": "Support"})))


@pytest.fixture
async def world(serve: Serve, tmp_path: Path) -> AsyncIterator[World]:
    async with serve(services_of(), tmp_path / "sb.db") as running:
        yield running


# -- reading cards ------------------------------------------------------------------------------

def shown(card: dict[str, Any]) -> str:
    """What the agent reads: texts, facts, choices and button titles, one per line."""
    parts: list[str] = []
    for node in nodes(card):
        kind = node.get("type")
        if kind == "TextBlock":
            parts.append(str(node.get("text", "")))
        elif isinstance(kind, str) and kind.startswith("Action.") and kind != "Action.Submit":
            parts.append(str(node.get("title", "")))
        elif kind is None and "title" in node and "value" in node:
            parts.append(f"{node['title']}: {node['value']}")
    return "\n".join(parts)


def facts_of(card: dict[str, Any]) -> dict[str, str]:
    return {f["title"]: f["value"] for block in of_type(card, "FactSet") for f in block["facts"]}


def card_now(world: World, card_id: str) -> dict[str, Any]:
    """The latest version of a posted card, as the agent sees it now."""
    content: dict[str, Any] = world.connector.latest[card_id]["attachments"][0]["content"]
    return content


async def card_saying(world: World, card_id: str, *words: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        card = card_now(world, card_id)
        return card if all(w in shown(card) for w in words) else None

    try:
        found: dict[str, Any] = await eventually(check)
    except AssertionError:
        raise AssertionError(
            f"card never said {words}: {shown(card_now(world, card_id))}") from None
    return found


def button(card: dict[str, Any], verb: str) -> dict[str, Any]:
    """The card's Action.Execute with this verb; fails when the card has none."""
    action = find_action(card, verb)
    assert action is not None, f"no {verb} button on: {shown(card)}"
    return action


def session_in(card: dict[str, Any], verb: str) -> str:
    return str(button(card, verb)["data"]["session_id"])


@dataclass
class Offer:
    card_id: str
    session_id: str
    card: dict[str, Any]


async def offer_for(agent: TeamsAgent, *, skip: int = 0, showing: str = "") -> Offer:
    """The agent's ringing invitation (the newest card with Accept, after `skip` older ones,
    that shows `showing`)."""
    found = await eventually(lambda: [card for card in agent.buttons("accept")[skip:]
                                      if showing in shown(card["card"])])
    newest = found[-1]
    return Offer(newest["id"], session_in(newest["card"], "accept"), newest["card"])


async def click(agent: TeamsAgent, verb: str, data: dict[str, Any],
                reply_to: str | None = None) -> dict[str, Any]:
    """Click a card button; the invoke response card (asserted 200 by the harness)."""
    return await agent.click(verb, data, reply_to=reply_to)


async def reply_card(agent: TeamsAgent, text: str, marker: str) -> dict[str, Any]:
    """Type a command; the reply card that contains `marker`."""
    before = len(agent.activities())
    status, _ = await agent.say(text)
    assert status == 200

    def found() -> dict[str, Any] | None:
        for activity in agent.activities()[before:]:
            for attachment in activity.get("attachments") or []:
                if marker in shown(attachment["content"]):
                    return dict(attachment["content"])
        return None

    card: dict[str, Any] = await eventually(found)
    return card


async def reply_text(agent: TeamsAgent, text: str) -> str:
    """Type a command; its text reply."""
    before = len(agent.activities())
    status, _ = await agent.say(text)
    assert status == 200
    texts = await eventually(lambda: [a["text"] for a in agent.activities()[before:]
                                      if a.get("text")])
    return str(texts[0])


async def state_of(agent: TeamsAgent) -> str:
    card = await reply_card(agent, "status", "Your status")
    return facts_of(card)["State"]


async def registered(world: World, *numbers: int) -> list[TeamsAgent]:
    """Install and register agents one second apart (the first is the longest idle)."""
    agents = []
    for n in numbers:
        agent = world.agent(n)
        await agent.install()
        assert "registered" in await reply_text(agent, "register")
        await world.advance(1)
        agents.append(agent)
    return agents


async def new_task(world: World, service: str = "sales", customer: str = "Jane Doe",
                   text: str = "Hi, I need a quote") -> Task:
    return await world.engine.run(create_task, service, Modality.IM,
                                  customer=Customer(name=customer), content={"text": text})


async def sessions_of(world: World, task_id: str) -> list[Session]:
    async def load(ctx: Ctx) -> list[Session]:
        return await ctx.uow.sessions.for_task(task_id)

    return await world.engine.run(load)


async def task_of(world: World, task_id: str) -> Task:
    async def load(ctx: Ctx) -> Task:
        return await ctx.task(task_id)

    return await world.engine.run(load)


async def settle(world: World) -> None:
    """Let due jobs (card syncs) finish; nothing new is scheduled by waiting."""
    await world.settle()


async def wrapped_up(world: World, agent: TeamsAgent, *, customer: str, tags: str,
                     service: str = "sales") -> Offer:
    """A whole session: offer, Accept, Terminate, Save with tags."""
    await new_task(world, service, customer)
    offer = await offer_for(agent)
    await click(agent, "accept", {"session_id": offer.session_id}, offer.card_id)
    form = await click(agent, "terminate", {"session_id": offer.session_id}, offer.card_id)
    assert find_action(form, "save_wrapup") is not None
    saved = await click(agent, "save_wrapup", {"session_id": offer.session_id, "tags": tags},
                        offer.card_id)
    assert find_action(saved, "save_wrapup") is None, shown(saved)
    return offer


# -- RONA, decline, cancel, broadcast, expiry ---------------------------------------------------

async def test_rona_offers_the_next_agent_and_reset_rona_clears_the_flag(world: World) -> None:
    first, second = await registered(world, 1, 2)
    await new_task(world)
    offer = await offer_for(first)
    assert all(w in shown(offer.card) for w in ("Accept", "Decline", "Jane Doe",
                                                "Hi, I need a quote", "Rings for 30 seconds"))
    assert second.buttons("accept") == []

    await world.advance(29)
    assert find_action(card_now(world, offer.card_id), "accept") is not None  # still ringing
    await world.advance(1)
    missed = await card_saying(world, offer.card_id, "Missed", "not accepted in time",
                               "You are flagged RONA")
    assert find_action(missed, "reset_rona") is not None
    assert find_action(missed, "accept") is None and find_action(missed, "decline") is None
    assert await state_of(first) == "RONA"
    # The task moved on to the next agent.
    passed_on = await offer_for(second)
    assert "Jane Doe" in shown(passed_on.card)

    reset = await click(first, "reset_rona", button(missed, "reset_rona")["data"],
                        offer.card_id)
    assert "Missed" in shown(reset)
    assert "flagged RONA" not in shown(reset) and find_action(reset, "reset_rona") is None
    assert await state_of(first) == "Available"


async def test_clearing_rona_updates_the_missed_card(world: World) -> None:
    [first] = await registered(world, 1)
    await new_task(world)
    offer = await offer_for(first)
    await world.advance(30)
    await card_saying(world, offer.card_id, "You are flagged RONA")
    assert "RONA is reset" in await reply_text(first, "reset")
    assert await state_of(first) == "Ringing"  # the flag is gone: the task rings again
    await settle(world)
    assert "flagged RONA" not in shown(card_now(world, offer.card_id))


async def test_decline_shows_the_declined_card_and_offers_the_next_agent(world: World) -> None:
    first, second = await registered(world, 1, 2)
    await new_task(world)
    offer = await offer_for(first)
    declined = await click(first, "decline", {"session_id": offer.session_id}, offer.card_id)
    assert "Declined" in shown(declined) and "went back to the queue" in shown(declined)
    assert find_action(declined, "accept") is None and find_action(declined, "reset_rona") is None
    await world.settle_cards()  # the update for the agent's other clients
    await card_saying(world, offer.card_id, "Declined")
    passed_on = await offer_for(second)
    assert "Jane Doe" in shown(passed_on.card)
    assert await state_of(first) == "Available"  # a plain decline sets no RONA


async def test_a_persistent_rona_decline_offers_reset_rona(serve: Serve, tmp_path: Path) -> None:
    services = services_of({"id": "sales", "name": "Sales",
                            "distribution": {"persistent_rona": True}})
    async with serve(services, tmp_path / "sb.db") as world:
        [first] = await registered(world, 1)
        await new_task(world)
        offer = await offer_for(first)
        declined = await click(first, "decline", {"session_id": offer.session_id},
                               offer.card_id)
        assert await state_of(first) == "RONA"  # the flag is set ...
        assert find_action(declined, "reset_rona") is not None  # ... but the card hides it


async def test_customer_cancel_before_accept_shows_cancelled_by_customer(world: World) -> None:
    [first] = await registered(world, 1)
    task = await new_task(world)
    offer = await offer_for(first)
    await world.engine.run(lifecycle.cancel_task, task.id)
    cancelled = await card_saying(world, offer.card_id, "Cancelled by customer",
                                  "The customer left before the task was accepted")
    assert find_action(cancelled, "accept") is None
    # An Accept clicked on a client that still shows the invitation is turned down.
    late = await click(first, "accept", {"session_id": offer.session_id}, offer.card_id)
    assert "no longer active" in shown(late) and "Cancelled" in shown(late)
    assert (await task_of(world, task.id)).state is TaskState.CANCELLED
    assert await state_of(first) == "Available"


BROADCAST = {"id": "helpdesk", "name": "Helpdesk", "distribution": {"mode": "broadcast"}}


async def test_broadcast_first_accept_wins_and_nobody_gets_rona(
        serve: Serve, tmp_path: Path) -> None:
    async with serve(services_of(BROADCAST), tmp_path / "sb.db") as world:
        agents = await registered(world, 1, 2, 3)
        task = await new_task(world, "helpdesk")
        offers = [await offer_for(agent) for agent in agents]
        assert len({o.session_id for o in offers}) == 3
        winner = agents[1]
        accepted = await click(winner, "accept", {"session_id": offers[1].session_id},
                               offers[1].card_id)
        assert "Accepted" in shown(accepted) and find_action(accepted, "terminate") is not None
        for loser in (0, 2):
            taken = await card_saying(world, offers[loser].card_id, "Taken by another agent")
            assert find_action(taken, "accept") is None
            assert find_action(taken, "reset_rona") is None
        # Long after the ring timeout nobody is RONA and nothing else rings.
        await world.advance(60)
        await settle(world)
        assert [await state_of(agents[i]) for i in (0, 2)] == ["Available", "Available"]
        assert all(find_action(card_now(world, o.card_id), "reset_rona") is None
                   for o in offers)
        sessions = await sessions_of(world, task.id)
        assert sorted(s.result.value for s in sessions if s.result) == [
            "accepted", "rescinded", "rescinded"]


async def test_broadcast_nobody_answers_missed_without_rona(serve: Serve, tmp_path: Path) -> None:
    async with serve(services_of(BROADCAST), tmp_path / "sb.db") as world:
        agents = await registered(world, 1, 2)
        await new_task(world, "helpdesk")
        offers = [await offer_for(agent) for agent in agents]
        await world.advance(30)
        for offer in offers:
            missed = await card_saying(world, offer.card_id, "Missed")
            assert "flagged RONA" not in shown(missed)
            assert find_action(missed, "reset_rona") is None
        # Nobody is flagged, so the task rings everyone again.
        assert [await state_of(a) for a in agents] == ["Ringing", "Ringing"]
        again = [await offer_for(agent) for agent in agents]
        assert {o.card_id for o in again}.isdisjoint({o.card_id for o in offers})


async def test_max_queue_time_expires_a_ringing_and_a_queued_task(
        serve: Serve, tmp_path: Path) -> None:
    services = services_of({"id": "sales", "name": "Sales",
                            "distribution": {"ring_timeout": "30s", "max_queue_time": "20s"}})
    async with serve(services, tmp_path / "sb.db") as world:
        [first] = await registered(world, 1)
        ringing = await new_task(world)
        offer = await offer_for(first)
        await world.advance(20)
        expired = await card_saying(world, offer.card_id, "Not handled in time",
                                    "waited too long")
        assert find_action(expired, "accept") is None
        assert find_action(expired, "reset_rona") is None
        assert (await task_of(world, ringing.id)).state is TaskState.EXPIRED
        late = await click(first, "accept", {"session_id": offer.session_id}, offer.card_id)
        assert "no longer active" in shown(late) and "Expired" in shown(late)

        # Queued (nobody on duty) until the maximum queue time passes: never offered.
        off = await reply_card(first, "duty Off Duty", "Your status")
        assert facts_of(off)["State"] == "Off duty"
        queued = await new_task(world, customer="John Roe")
        await world.advance(20)
        assert (await task_of(world, queued.id)).state is TaskState.EXPIRED
        back = await reply_card(first, "duty Duty", "Your status")
        assert facts_of(back)["State"] == "Available"
        await settle(world)
        assert first.buttons("accept") == []
        assert await sessions_of(world, queued.id) == []


# -- stale and foreign clicks -----------------------------------------------------------------

async def test_double_accept_answers_no_longer_active_and_opens_one_session(
        world: World) -> None:
    [first] = await registered(world, 1)
    task = await new_task(world)
    offer = await offer_for(first)
    accepted = await click(first, "accept", {"session_id": offer.session_id}, offer.card_id)
    assert find_action(accepted, "terminate") is not None
    again = await click(first, "accept", {"session_id": offer.session_id}, offer.card_id)
    assert "This invitation is no longer active" in shown(again)
    assert "Accepted" in shown(again)
    assert find_action(again, "accept") is None
    await settle(world)
    sessions = await sessions_of(world, task.id)
    assert [(s.phase, s.agent_id) for s in sessions] == [(Phase.CONNECTED, first.user_id)]
    # One chatroom: the local-mode header reached the personal chat once.
    headers = [c for c in first.cards() if "Sales ¦ Jane Doe" in shown(c["card"])]
    assert len(headers) == 1
    assert find_action(card_now(world, offer.card_id), "terminate") is not None


async def test_two_accepts_at_once_connect_once(world: World) -> None:
    [first] = await registered(world, 1)
    task = await new_task(world)
    offer = await offer_for(first)
    answers = await asyncio.gather(*(click(first, "accept", {"session_id": offer.session_id},
                                           offer.card_id) for _ in range(2)))
    winners = [a for a in answers if find_action(a, "terminate") is not None]
    losers = [a for a in answers if "no longer active" in shown(a)]
    assert (len(winners), len(losers)) == (1, 1)
    assert [s.phase for s in await sessions_of(world, task.id)] == [Phase.CONNECTED]


async def test_accept_on_an_offer_another_agent_took(serve: Serve, tmp_path: Path) -> None:
    async with serve(services_of(BROADCAST), tmp_path / "sb.db") as world:
        first, second = await registered(world, 1, 2)
        task = await new_task(world, "helpdesk")
        mine, theirs = await offer_for(first), await offer_for(second)
        await click(second, "accept", {"session_id": theirs.session_id}, theirs.card_id)
        late = await click(first, "accept", {"session_id": mine.session_id}, mine.card_id)
        assert "no longer active" in shown(late) and "Taken by another agent" in shown(late)
        assert find_action(late, "accept") is None
        current = await task_of(world, task.id)
        assert (current.state, current.agent_id) == (TaskState.CONNECTED, second.user_id)


async def test_a_click_on_someone_elses_session_is_refused_and_changes_nothing(
        world: World) -> None:
    first, second = await registered(world, 1, 2)
    task = await new_task(world)
    offer = await offer_for(first)
    await settle(world)
    updates = len(world.connector.updates)
    for verb in ("accept", "decline", "complete", "save_wrapup"):
        refused = await click(second, verb, {"session_id": offer.session_id})
        text = shown(refused)
        assert "another agent" in text or "not yours" in text, (verb, text)
        assert "Jane Doe" not in text  # nothing about the other agent's customer
        assert find_action(refused, "accept") is None
    await settle(world)
    assert len(world.connector.updates) == updates
    assert [(s.phase, s.agent_id) for s in await sessions_of(world, task.id)] == [
        (Phase.RINGING, first.user_id)]
    assert await state_of(second) == "Available"
    # The owner's invitation still works; then the foreign Terminate is refused too.
    await click(first, "accept", {"session_id": offer.session_id}, offer.card_id)
    for verb in ("terminate", "extend_acw", "end_acw"):
        refused = await click(second, verb, {"session_id": offer.session_id})
        assert "another agent" in shown(refused), (verb, shown(refused))
    assert [s.phase for s in await sessions_of(world, task.id)] == [Phase.CONNECTED]
    # A made-up session id is no error either.
    unknown = await click(second, "accept", {"session_id": "no-such-session"})
    assert "no longer known" in shown(unknown)


async def test_clicks_on_cards_from_before_a_restart(serve: Serve, tmp_path: Path) -> None:
    db = tmp_path / "sb.db"
    clock = FakeClock()
    async with ConnectorStandin() as connector:
        async with serve(services_of(), db, connector=connector, clock=clock) as before:
            first, second = await registered(before, 1, 2)
            ringing = await new_task(before, customer="Ann Early")
            kept = await offer_for(first)
        async with serve(services_of(), db, connector=connector, clock=clock) as after:
            first, second = after.agent(1), after.agent(2)
            # An invitation posted before the restart is accepted after it.
            accepted = await click(first, "accept", {"session_id": kept.session_id},
                                   kept.card_id)
            assert "Accepted" in shown(accepted) and find_action(accepted, "terminate")
            await card_saying(after, kept.card_id, "Accepted")
            assert (await task_of(after, ringing.id)).state is TaskState.CONNECTED
            # The ring timer of an offer made before the restart still fires after it.
            await new_task(after, customer="Bob Late")
            timed = await offer_for(second)
        async with serve(services_of(), db, connector=connector, clock=clock) as later:
            second = later.agent(2)
            await later.advance(30)
            await card_saying(later, timed.card_id, "Missed", "You are flagged RONA")
            # Its Accept, clicked on the old card, answers a card saying so.
            stale = await click(second, "accept", {"session_id": timed.session_id},
                                timed.card_id)
            assert "no longer active" in shown(stale) and "RONA" in shown(stale)
            assert find_action(stale, "accept") is None


async def test_the_scheduler_stops_even_right_after_a_wake(world: World) -> None:
    """Stopping the app cancels the scheduler task; a wake in the same moment must not undo it."""
    scheduler = asyncio.create_task(world.engine.jobs.run_scheduler())
    await asyncio.sleep(0.05)  # idle: waiting for the wake event or the poll timeout
    world.engine.jobs.wake()  # e.g. a use case committed just now
    await asyncio.sleep(0)  # the event's waiter finishes ...
    scheduler.cancel()  # ... and the app stops (scheduler_ctx: task.cancel(); await task)
    done, _ = await asyncio.wait({scheduler}, timeout=1.5)
    if not done:  # the cancel was swallowed: a second one gets the task out of its loop
        scheduler.cancel()
        await asyncio.wait({scheduler}, timeout=1.5)
    assert done == {scheduler}, "run_scheduler swallowed its cancellation and kept running"
    assert scheduler.cancelled()


# -- tags typeahead -----------------------------------------------------------------------------

async def test_tag_typeahead_suggests_tags_used_in_the_service(world: World) -> None:
    [first] = await registered(world, 1)
    await wrapped_up(world, first, customer="Jane Doe", tags="VIP, Renewal")
    await world.advance(20)  # after-call work ends
    await new_task(world, customer="John Roe")
    offer = await offer_for(first)
    await click(first, "accept", {"session_id": offer.session_id}, offer.card_id)
    form = await click(first, "terminate", {"session_id": offer.session_id}, offer.card_id)
    [tags] = [i for i in of_type(form, "Input.ChoiceSet") if i["id"] == "tags"]
    assert tags["choices.data"] == {"type": "Data.Query", "dataset": "tags"}

    async def search(text: str) -> list[dict[str, str]]:
        status, body = await first.post(act.search(world.service_url, first.conversation_id,
                                                   first.user_id, first.name, text,
                                                   reply_to=offer.card_id))
        assert status == 200, body
        assert body["type"] == "application/vnd.microsoft.search.searchResponse"
        return list(body["value"]["results"])

    assert await search("ren") == [{"title": "Renewal", "value": "Renewal"}]
    assert await search("VI") == [{"title": "VIP", "value": "VIP"}]
    assert sorted(r["value"] for r in await search("")) == ["Renewal", "VIP"]
    assert await search("zzz") == []


# -- after-call work ----------------------------------------------------------------------------

async def test_extend_and_end_acw_on_the_wrapup_card(world: World) -> None:
    [first] = await registered(world, 1)
    await new_task(world)
    offer = await offer_for(first)
    await click(first, "accept", {"session_id": offer.session_id}, offer.card_id)
    waiting = await new_task(world, customer="John Roe")  # queued: the agent is busy
    form = await click(first, "terminate", {"session_id": offer.session_id}, offer.card_id)
    ends = world.clock.now() + timedelta(seconds=20)
    assert "Wrap-up" in shown(form)
    assert f"After-call work ends at {ends:%H:%M:%S} UTC" in shown(form)
    assert find_action(form, "extend_acw") is not None
    assert find_action(form, "end_acw") is not None
    assert await state_of(first) == "After-call work"

    extended = await click(first, "extend_acw", {"session_id": offer.session_id},
                           offer.card_id)
    assert find_action(extended, "extend_acw") is None  # once per session
    assert find_action(extended, "end_acw") is not None
    # The maximum extension (1 min) is added to what is left (20 s): 1 min 20 s from now.
    ends = world.clock.now() + timedelta(seconds=80)
    assert f"After-call work ends at {ends:%H:%M:%S} UTC" in shown(extended)
    await world.advance(25)  # past the original 20 s: the extension holds the agent
    assert await state_of(first) == "After-call work"
    assert (await task_of(world, waiting.id)).state is TaskState.QUEUED

    ended = await click(first, "end_acw", {"session_id": offer.session_id}, offer.card_id)
    assert find_action(ended, "save_wrapup") is not None
    assert find_action(ended, "end_acw") is None and find_action(ended, "extend_acw") is None
    assert "After-call work ends" not in shown(ended)
    nxt = await offer_for(first)
    assert "John Roe" in shown(nxt.card)


async def test_the_card_clicked_gets_one_update_once_its_answers_settle(world: World) -> None:
    """Each click is answered with the card as it now is (Teams shows it at once); the update
    that makes it stick on the agent's other clients waits CARD_SETTLE and carries them all."""
    [first] = await registered(world, 1)
    await new_task(world)
    offer = await offer_for(first)
    await click(first, "accept", {"session_id": offer.session_id}, offer.card_id)
    await world.settle_cards()
    assert find_action(first.stored_card(offer.card_id) or {}, "terminate") is not None
    updates = len(first.card_versions(offer.card_id))

    await click(first, "terminate", {"session_id": offer.session_id}, offer.card_id)
    form = await click(first, "end_acw", {"session_id": offer.session_id}, offer.card_id)
    assert find_action(form, "save_wrapup") is not None
    saved = await click(first, "save_wrapup", {"session_id": offer.session_id,
                                               "tags": "Quote"}, offer.card_id)
    assert find_action(saved, "save_wrapup") is None, shown(saved)
    await world.settle()
    assert len(first.card_versions(offer.card_id)) == updates  # the answers showed each step
    assert first.card(offer.card_id) == saved  # and Teams shows the last one on the card
    await world.advance((CARD_SETTLE - timedelta(milliseconds=1)).total_seconds())
    assert len(first.card_versions(offer.card_id)) == updates

    await world.settle_cards()
    assert len(first.card_versions(offer.card_id)) == updates + 1
    assert first.stored_card(offer.card_id) == saved


async def test_a_click_elsewhere_updates_the_session_card_at_once(world: World) -> None:
    """Only the card clicked shows the answer: a click from another card (the My Sessions
    card, a chatroom header) leaves the session's own card to its update, sent at once."""
    [first] = await registered(world, 1)
    await new_task(world)
    offer = await offer_for(first)
    await click(first, "accept", {"session_id": offer.session_id}, offer.card_id)
    await world.settle_cards()
    updates = len(first.card_versions(offer.card_id))
    await click(first, "terminate", {"session_id": offer.session_id}, "another-card")
    await world.settle()
    assert len(first.card_versions(offer.card_id)) == updates + 1
    assert find_action(first.card(offer.card_id) or {}, "end_acw") is not None


async def test_a_second_extend_acw_keeps_the_wrapup_form(world: World) -> None:
    [first] = await registered(world, 1)
    await new_task(world)
    offer = await offer_for(first)
    await click(first, "accept", {"session_id": offer.session_id}, offer.card_id)
    await click(first, "terminate", {"session_id": offer.session_id}, offer.card_id)
    await click(first, "extend_acw", {"session_id": offer.session_id}, offer.card_id)
    again = await click(first, "extend_acw", {"session_id": offer.session_id}, offer.card_id)
    assert "no longer active" not in shown(again)
    assert find_action(again, "save_wrapup") is not None


async def test_no_acw_buttons_when_the_service_does_not_allow_them(
        serve: Serve, tmp_path: Path) -> None:
    services = services_of(
        {"id": "sales", "name": "Sales",
         "acw": {"duration": "20s", "allow_early_end": False, "max_extension": "0s"}},
        {"id": "support", "name": "Support", "acw": {"duration": "0s"}})
    async with serve(services, tmp_path / "sb.db") as world:
        [first] = await registered(world, 1)
        await new_task(world)
        offer = await offer_for(first)
        await click(first, "accept", {"session_id": offer.session_id}, offer.card_id)
        form = await click(first, "terminate", {"session_id": offer.session_id},
                           offer.card_id)
        assert "After-call work ends at" in shown(form)
        assert find_action(form, "save_wrapup") is not None
        assert find_action(form, "extend_acw") is None and find_action(form, "end_acw") is None
        # A crafted End ACW is refused; the ACW runs its full 20 seconds.
        refused = await click(first, "end_acw", {"session_id": offer.session_id})
        assert "does not allow ending after-call work early" in shown(refused)
        await new_task(world, customer="John Roe")
        await world.advance(19)
        assert await state_of(first) == "After-call work"
        await world.advance(1)
        nxt = await offer_for(first)
        assert "John Roe" in shown(nxt.card)

        # No ACW at all: the wrap-up form has no ACW line and the agent is free at once.
        await click(first, "accept", {"session_id": nxt.session_id}, nxt.card_id)
        await click(first, "transfer", {"session_id": nxt.session_id,
                                        "target_service": "support"}, nxt.card_id)
        await world.advance(20)  # the Sales ACW of the transferred session ends first
        # The new offer, not the one just accepted (its card update is a job of its own).
        moved = await offer_for(first, showing="Call flow: Sales → Support")
        await click(first, "accept", {"session_id": moved.session_id}, moved.card_id)
        done = await click(first, "terminate", {"session_id": moved.session_id},
                           moved.card_id)
        assert find_action(done, "save_wrapup") is not None
        assert "After-call work ends" not in shown(done)
        assert find_action(done, "end_acw") is None and find_action(done, "extend_acw") is None
        assert await state_of(first) == "Available"


# -- every card above passes the official parser and the size budget ------------------------------

@pytest.mark.needs_node("adaptivecards")
def test_every_card_seen_is_valid_and_fits(card_log: CardLog,
                                           request: pytest.FixtureRequest) -> None:
    check_seen_cards(card_log.of(request.node.nodeid.partition("::")[0]))
