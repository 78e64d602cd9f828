"""The Bot Connector answers 503 for 10 s, then recovers: everything arrives, in order.

The stand-in sends no Retry-After, so the server's sender backs off with jitter; cards and
relayed messages queued during the outage go out once it ends, in order per conversation,
and the last version of every card shows its session's final state.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import aiohttp

from tests.resilience.harness import (
    STAGE_ORDER,
    Launch,
    accept_into_chat,
    card_stage,
    card_text,
    db_of,
    expected_stage,
    make_customer,
    quiet,
    registered,
)
from tests.standins.connector import ConnectorStandin
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually

OUTAGE = 10.0


async def test_connector_503_for_10s_then_every_card_and_message_arrives_in_order(
        launch: Launch, connector: ConnectorStandin, client: aiohttp.ClientSession) -> None:
    server = launch(ring_timeout="5s", acw="2s", rona_reset="10s", members=2)
    db = db_of(server)
    await server.ready()
    agents = await registered(server, connector, client, 2)

    # Before the outage: a customer's chat is live with one agent (header posted).
    jane, bob = make_customer(server, client), make_customer(server, client)
    await jane.open("Hi", name="Jane Doe")
    [jane_offer] = await eventually(lambda: db.shown(jane.chat_id))
    taker: TeamsAgent = next(a for a in agents if a.user_id == jane_offer["agent_id"])
    misser: TeamsAgent = next(a for a in agents if a is not taker)
    card_id = jane_offer["card_id"]
    accepted = await accept_into_chat(taker, jane_offer)
    assert card_stage(accepted) == "accepted"
    await quiet(db)

    connector.fail_for(OUTAGE, 503)
    outage_ends = time.monotonic() + OUTAGE
    # During the outage: the customer writes three messages, another customer rings the other
    # agent (the invitation cannot be shown), and the first agent types a command.
    for text in ("m1", "m2", "m3"):
        await jane.say(text)
    await bob.open("Hello", name="Bob Roe")
    [bob_offer] = await eventually(lambda: db.sessions(bob.chat_id))
    assert bob_offer["agent_id"] == misser.user_id
    started = time.monotonic()
    status_turn = asyncio.create_task(taker.say("status", timeout=60))
    # The other agent lets it ring: RONA (see the test below for when); then that customer
    # leaves, so nothing rings on while the test checks the final state.
    await eventually(lambda: db.session(bob_offer["id"])["result"] == "rona", timeout=45)
    await bob.leave()
    assert connector.failed > 0

    # -- recovery --------------------------------------------------------------------------------
    status, _ = await asyncio.wait_for(status_turn, timeout=60)
    status_latency = time.monotonic() - started
    assert status == 200
    assert status_latency >= outage_ends - started - 1, "the reply cannot beat the outage"
    relayed = ["Jane Doe: m1", "Jane Doe: m2", "Jane Doe: m3"]
    await eventually(lambda: [t for t in taker.texts() if t.startswith("Jane Doe:")] == relayed,
                     timeout=45)
    assert card_stage(taker.card(card_id)) == "accepted"
    await eventually(lambda: card_stage(misser.card(db.session(bob_offer["id"])["card_id"] or ""))
                     == "missed", timeout=40)
    await quiet(db, timeout=40)

    # The taker finishes: terminate, ACW ends by itself (2 s), save the wrap-up.
    await taker.click("terminate", {"session_id": jane_offer["id"]}, reply_to=card_id)
    await eventually(lambda: db.session(jane_offer["id"])["phase"] == "ended", timeout=10)
    concluded = await taker.click("save_wrapup", {"session_id": jane_offer["id"]},
                                  reply_to=card_id)
    assert card_stage(concluded) == "concluded"
    await quiet(db)
    await eventually(lambda: card_stage(taker.card(card_id)) == "concluded", timeout=10)

    # -- what arrived ----------------------------------------------------------------------------
    # The chat header came first, then the customer's messages in order, each exactly once.
    chat = taker.activities()
    header_at = next(i for i, a in enumerate(chat) if "Sales ¦ Jane Doe" in card_text(a))
    positions = [next(i for i, a in enumerate(chat) if a.get("text") == line)
                 for line in relayed]
    assert header_at < positions[0] < positions[1] < positions[2]
    assert all(taker.texts().count(line) == 1 for line in relayed)
    assert "Hi" in card_text(chat[header_at])
    # The status reply arrived too.
    assert [a for a in chat if "Your status" in card_text(a)], "the status card was lost"

    # Every session's card ends showing the session's final state; no card went backwards.
    for session in db.sessions():
        owner = taker if session["agent_id"] == taker.user_id else misser
        assert session["card_id"], session
        assert card_stage(owner.card(session["card_id"])) == expected_stage(session), session
        stages = [card_stage(v) for v in owner.card_versions(session["card_id"])]
        ranked = [STAGE_ORDER.index(s) for s in stages if s in STAGE_ORDER]
        assert ranked == sorted(ranked), (session["id"], stages)
    # One card per session, no duplicates from retries: besides the session cards, the agents
    # got the welcome card, and the taker the chat header and the status card.
    for agent, extras in ((taker, ["Welcome", "Sales ¦ Jane Doe", "Your status"]),
                          (misser, ["Welcome"])):
        session_cards = {s["card_id"] for s in db.sessions() if s["agent_id"] == agent.user_id}
        others = [a for a in agent.activities()
                  if a.get("attachments") and a["id"] not in session_cards]
        assert len(others) == len(extras), [card_text(a)[:80] for a in others]
        for activity, marker in zip(others, extras, strict=True):
            assert marker in card_text(activity)
    assert db.integrity() == ["ok"]
    print(f"status command during the outage answered after {status_latency:.1f}s")


async def test_an_invitation_rings_from_when_the_connector_shows_it(
        launch: Launch, connector: ConnectorStandin, client: aiohttp.ClientSession) -> None:
    server = launch(ring_timeout="5s", acw="2s", rona_reset="10s", members=1)
    db = db_of(server)
    await server.ready()
    await registered(server, connector, client)

    connector.fail_for(OUTAGE, 503)
    outage_ends = time.monotonic() + OUTAGE
    jane = make_customer(server, client)
    await jane.open("Hi", name="Jane Doe")
    [offer] = await eventually(lambda: db.sessions(jane.chat_id))
    # The invitation cannot be shown: its 5 s ring has not started, so no RONA for a card
    # Teams never showed (issue #18); the offer waits for its card.
    due = offer["offered_at"] + 5
    await asyncio.sleep(max(0.0, due + 2.0 - time.time()))
    assert time.monotonic() < outage_ends - 1, "the check must happen inside the outage"
    waiting = db.session(offer["id"])
    assert (waiting["phase"], waiting["result"]) == ("ringing", None), waiting["result"]
    # Teams is back: the card arrives and rings its 5 s from then, then RONA.
    shown = await eventually(lambda: db.shown(jane.chat_id), timeout=OUTAGE + 40)
    delivered = datetime.fromisoformat(shown[0]["data"]["delivered_at"]).timestamp()
    assert delivered >= offer["offered_at"] + OUTAGE - 1
    await eventually(lambda: db.session(offer["id"])["result"], timeout=15)
    assert db.session(offer["id"])["result"] == "rona"
    assert time.time() >= delivered + 5 - 0.5


async def test_messages_written_while_connected_reach_the_chat_even_after_terminate(
        launch: Launch, connector: ConnectorStandin, client: aiohttp.ClientSession) -> None:
    server = launch(ring_timeout="5s", acw="2s", members=1)
    db = db_of(server)
    await server.ready()
    [agent] = await registered(server, connector, client)
    jane = make_customer(server, client)
    await jane.open("Hi", name="Jane Doe")
    [offer] = await eventually(lambda: db.shown(jane.chat_id))
    await accept_into_chat(agent, offer)
    await quiet(db)

    # The agent's conversation is briefly unavailable (503, Retry-After 0.5 s) while the
    # customer writes twice; the agent terminates before the second message could be relayed.
    connector.fail_for(3, 503, path=agent.conversation_id, retry_after=0.5)
    await jane.say("first")
    await eventually(lambda: [t for t in db.timers() if t["kind"] == "relay" and t["lease_until"]])
    await jane.say("second")
    await agent.click("terminate", {"session_id": offer["id"]}, reply_to=offer["card_id"])
    await eventually(lambda: "Jane Doe: first" in agent.texts(), timeout=30)
    await eventually(lambda: [t for t in agent.texts() if t.endswith(": second")], timeout=30)
    await quiet(db, timeout=30)
    # Relayed late: by then the task may have concluded and, the service not storing context,
    # the customer's name was removed, so the line may carry the neutral label.
    relayed = [t for t in agent.texts() if t.endswith(": second")]
    assert relayed in (["Jane Doe: second"], ["Customer: second"]), agent.texts()
    # Retention waited for the chatroom: the lines it owed went once relayed, none before.
    await eventually(lambda: db.task_state(jane.chat_id) not in ("connected", "wrapup"),
                     timeout=30)
    await quiet(db, timeout=30)
    assert [m for m in db.messages(jane.chat_id)
            if m["sender"] == "customer" and m["kind"] == "message"] == []
