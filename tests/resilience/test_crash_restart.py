"""kill -9 mid-flight, restart on the same database: every task, offer and timer carries on.

The server is `python -m bot` in its own process group; the crash is SIGKILL to that group
(no graceful shutdown, no flush). The test kills at quiet moments (no card/chat/relay job
due or running), because a job that held its lease when the process died waits out the lease
(30 s) before it runs again; the timers this test is about are ring timeout and ACW end.
"""

from __future__ import annotations

import time

import aiohttp

from tests.resilience.harness import (
    KEEP_TRANSCRIPT,
    Launch,
    card_stage,
    card_text,
    db_of,
    expected_stage,
    make_customer,
    quiet,
    registered,
)
from tests.standins.connector import ConnectorStandin
from tests.support.cards import find_action
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually


async def test_kill9_while_ringing_and_during_acw_loses_nothing_and_fires_once(
        launch: Launch, connector: ConnectorStandin, client: aiohttp.ClientSession) -> None:
    # The service keeps the transcript (30 days), so the record below can show nothing was lost.
    server = launch(ring_timeout="5s", acw="4s", rona_reset="1m", members=2,
                    extra=KEEP_TRANSCRIPT)
    db = db_of(server)
    await server.ready()
    agents = await registered(server, connector, client, 2)

    # A website chat rings one agent; the customer writes again while it rings.
    jane = make_customer(server, client)
    await jane.open("Hello", name="Jane Doe")
    first_task = jane.chat_id
    [offer] = await eventually(lambda: [s for s in db.sessions(first_task)
                                        if s["phase"] == "ringing" and s["card_id"]])
    first: TeamsAgent = next(a for a in agents if a.user_id == offer["agent_id"])
    second: TeamsAgent = next(a for a in agents if a is not first)
    assert card_stage(first.card(offer["card_id"])) == "invitation"
    await jane.say("Still waiting")
    await quiet(db)
    assert f"ring_timeout:{offer['id']}" in {t["id"] for t in db.timers()}

    # -- crash 1: while the task rings ---------------------------------------------------------
    server.kill9()
    killed = time.time()
    assert killed < offer["offered_at"] + 5, "the ring timeout must still be pending at the kill"
    server.start()
    await server.ready()

    # The ring timeout fires after the restart: RONA, the card says Missed, the next agent rings.
    await eventually(lambda: db.session(offer["id"])["result"] == "rona", timeout=15)
    [timed_out] = db.events("offer.timed_out", session_id=offer["id"])
    assert timed_out["at"] > killed
    await eventually(lambda: card_stage(first.card(offer["card_id"])) == "missed", timeout=10)
    [(invitation_id, invitation)] = await eventually(lambda: second.cards_with("accept"),
                                                     timeout=10)
    action = find_action(invitation, "accept")
    assert action is not None
    rerouted = action["data"]["session_id"]
    assert db.session(rerouted)["task_id"] == first_task

    # The next agent takes it; the chat (local mode: their personal chat) gets the transcript.
    accepted = await second.click("accept", action["data"], reply_to=invitation_id)
    assert card_stage(accepted) == "accepted"
    header = await eventually(lambda: [a for a in second.activities()
                                       if "Sales ¦ Jane Doe" in card_text(a)], timeout=10)
    assert "Hello" in card_text(header[0]) and "Still waiting" in card_text(header[0])
    await jane.say("Are you there?")
    await eventually(lambda: "Jane Doe: Are you there?" in second.texts(), timeout=10)

    # A second customer queues: the first agent is RONA, the second busy.
    bob = make_customer(server, client)
    await bob.open("Second question", name="Bob")
    second_task = bob.chat_id
    assert db.task_state(second_task) == "queued"

    # Terminate: after-call work (4 s) runs; the queued task waits for its end.
    wrapup = await second.click("terminate", {"session_id": rerouted}, reply_to=invitation_id)
    assert card_stage(wrapup) == "wrapup"
    await quiet(db)
    assert db.session(rerouted)["phase"] == "acw"
    assert f"acw_end:{rerouted}" in {t["id"] for t in db.timers()}
    assert db.task_state(second_task) == "queued"

    # -- crash 2: during after-call work -------------------------------------------------------
    server.kill9()
    killed_in_acw = time.time()
    server.start()
    await server.ready()

    # ACW ends once after the restart, the first task is done, the agent gets the next task.
    await eventually(lambda: db.session(rerouted)["phase"] == "ended", timeout=15)
    [acw_ended] = db.events("acw.ended", session_id=rerouted)
    assert acw_ended["at"] > killed_in_acw
    [next_offer] = await eventually(lambda: [s for s in db.sessions(second_task)
                                             if s["phase"] == "ringing" and s["card_id"]],
                                    timeout=10)
    assert next_offer["agent_id"] == second.user_id
    await eventually(lambda: card_stage(second.card(next_offer["card_id"])) == "invitation",
                     timeout=10)
    await quiet(db)

    # -- the record: every timer fired once, nothing lost, nothing doubled -----------------------
    sessions = db.sessions()
    assert {s["id"] for s in sessions} == {offer["id"], rerouted, next_offer["id"]}
    for session in sessions:
        assert db.count_events("offer.created", session_id=session["id"]) == 1, session
    assert [e["session_id"] for e in db.events("offer.timed_out")] == [offer["id"]]
    assert [e["session_id"] for e in db.events("acw.ended")] == [rerouted]
    assert [e["session_id"] for e in db.events("session.connected")] == [rerouted]
    assert [e["task_id"] for e in db.events("task.done")] == [first_task]
    assert db.task_state(first_task) == "done"
    assert db.task_state(second_task) == "ringing"
    leftovers = {t["id"] for t in db.timers()}
    assert f"ring_timeout:{offer['id']}" not in leftovers
    assert f"acw_end:{rerouted}" not in leftovers
    assert f"ring_timeout:{next_offer['id']}" in leftovers
    customer_lines = [m["text"] for m in db.messages(first_task)
                      if m["sender"] == "customer" and m["kind"] == "message"]
    assert customer_lines == ["Hello", "Still waiting", "Are you there?"]
    seqs = [m["seq"] for m in db.messages(first_task)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert second.texts().count("Jane Doe: Are you there?") == 1

    # Each session's card was posted once and its latest version shows the session's state.
    for session in sessions:
        owner = first if session["agent_id"] == first.user_id else second
        assert session["card_id"], session
        assert card_stage(owner.card(session["card_id"])) == expected_stage(session), session
    card_posts = {a.n: [x for x in a.activities() if x.get("attachments")] for a in agents}
    # welcome card + one card per session (+ the chat header for the agent who took the chat)
    assert len(card_posts[first.n]) == 1 + 1
    assert len(card_posts[second.n]) == 1 + 2 + 1
    assert db.integrity() == ["ok"]


async def test_a_card_being_sent_at_the_crash_goes_out_promptly_after_the_restart(
        launch: Launch, connector: ConnectorStandin, client: aiohttp.ClientSession) -> None:
    server = launch(ring_timeout="10m", members=1)
    db = db_of(server)
    await server.ready()
    [agent] = await registered(server, connector, client)

    # The connector stalls, so the invitation job is running (leased) when the process dies.
    connector.fail_for(60, 503)
    jane = make_customer(server, client)
    await jane.open("Hello", name="Jane Doe")
    [offer] = await eventually(lambda: db.sessions(jane.chat_id))
    await eventually(lambda: [t for t in db.timers()
                              if t["id"] == f"sync_card:{offer['id']}" and t["lease_until"]])
    server.kill9()
    connector.clear_failures()
    server.start()
    await server.ready()
    restarted = time.monotonic()
    try:
        await eventually(lambda: db.session(offer["id"])["card_id"], timeout=6)
    except AssertionError:
        raise AssertionError(f"no invitation card {time.monotonic() - restarted:.0f}s after "
                             "the restart") from None
    assert card_stage(agent.card(db.session(offer["id"])["card_id"])) == "invitation"
