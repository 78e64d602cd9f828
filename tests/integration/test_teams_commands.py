"""Typed commands, My Sessions, the local-mode chatroom and bad input on /api/messages.

Each test drives the real app over HTTP and asserts what the agent reads: the reply cards and
texts in the personal chat, the latest version of the invitation card, invoke responses.
The helpers (a restartable world, card readers, card validation) live in test_teams_paths.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.task import TaskState
from bot.services import conversation, lifecycle
from tests import teams_activities as act
from tests.cards.walk import of_type
from tests.integration.test_teams_paths import (
    button,
    card_now,
    card_saying,
    check_seen_cards,
    click,
    facts_of,
    new_task,
    offer_for,
    registered,
    reply_card,
    reply_text,
    services_of,
    sessions_of,
    settle,
    shown,
    state_of,
    task_of,
)
from tests.support.cardlog import CardLog
from tests.support.cards import find_action
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually
from tests.support.world import Serve, World


@pytest.fixture
async def world(serve: Serve, tmp_path: Path) -> AsyncIterator[World]:
    async with serve(services_of(), tmp_path / "sb.db") as running:
        yield running


async def rona(world: World, agent: TeamsAgent) -> str:
    """Let an invitation ring out: the agent is flagged RONA; returns the card id."""
    offer = await offer_for(agent)
    await world.advance(30)
    await card_saying(world, offer.card_id, "You are flagged RONA")
    return offer.card_id


# -- help, register, unknown text ---------------------------------------------------------------

async def test_help_lists_every_command(world: World) -> None:
    agent = world.agent(1)
    await agent.install()
    card = await reply_card(agent, "help", "Switchboard commands")
    commands = facts_of(card)
    # As Teams renders them: "<" and "[" are escaped for markdown.
    for command in ("help", "register", "unregister", "status", "duty ‹profile›", "reset",
                    "sessions \\[search\\]", "nar"):
        assert command in commands, (command, commands)
    assert "Off Duty" in commands["duty ‹profile›"]


async def test_welcome_register_button_and_unknown_text(world: World) -> None:
    agent = world.agent(1)
    await agent.install()
    [welcome] = await eventually(lambda: agent.cards())
    assert "Welcome to Switchboard" in shown(welcome["card"])
    action = find_action(welcome["card"], "register")
    assert action is not None
    done = await click(agent, "register", action["data"], welcome["id"])
    assert "You are registered" in shown(done) and "Sales" in shown(done)
    assert await state_of(agent) == "Available"
    hint = await reply_text(agent, "hello there")
    assert hint == 'I don\'t know "hello". Type **help** to see what I can do.'
    # The welcome card after a re-install offers Unregister.
    await agent.install()
    again = await eventually(lambda: agent.buttons("unregister"))
    assert "You are registered" in shown(again[-1]["card"])


# -- status, duty, reset, nar, unregister -------------------------------------------------------

async def test_status_shows_duty_profile_and_rona_with_reset(world: World) -> None:
    [agent] = await registered(world, 1)
    status = await reply_card(agent, "status", "Your status")
    assert facts_of(status) == {"State": "Available", "Duty profile": "Duty",
                                "Sales": "Taking tasks", "Support": "Taking tasks"}
    assert find_action(status, "reset_rona") is None
    assert button(status, "duty")["title"] == "Off Duty"
    assert "No open sessions." in shown(status)

    await new_task(world)
    await rona(world, agent)
    status = await reply_card(agent, "status", "Your status")
    facts = facts_of(status)
    assert facts["State"] == "RONA"
    assert facts["RONA"] == "Set: you receive no tasks until it is reset"
    assert facts["Not-available reasons"] == "1 to fill out: type **nar**"
    reset = find_action(status, "reset_rona")
    assert reset is not None
    cleared = await click(agent, "reset_rona", reset["data"])
    assert facts_of(cleared)["State"] == "Ringing"  # free again: the waiting task rings
    assert "RONA" not in facts_of(cleared) and find_action(cleared, "reset_rona") is None


async def stays_queued(world: World, agent: TeamsAgent) -> None:
    """A new task is not offered to the agent: a minute later it still waits in the queue."""
    task = await new_task(world)
    await world.advance(60)
    await settle(world)
    assert agent.buttons("accept") == []
    assert (await task_of(world, task.id)).state is TaskState.QUEUED


async def test_one_service_off_holds_its_invitations_only(world: World) -> None:
    [agent] = await registered(world, 1)
    off = await reply_card(agent, "service Sales off", "Your status")
    assert facts_of(off)["Sales"] == "Off" and facts_of(off)["Support"] == "Taking tasks"
    assert facts_of(off)["State"] == "Available"
    await stays_queued(world, agent)
    switch = find_action(off, "service_duty")
    assert switch is not None and switch["data"] == {"service_id": "sales", "on": "1"}
    on = await click(agent, "service_duty", switch["data"])
    assert facts_of(on)["State"] == "Ringing"  # responsible again: the waiting task rings
    assert find_action(on, "service_duty")["data"] == {"service_id": "sales", "on": "0"}
    await eventually(lambda: agent.buttons("accept"))
    switched = [(e.agent_id, e.service_id, e.data["on"])
                for e in await world.engine.read(lambda ctx: ctx.uow.events.after(0, 1_000))
                if e.name == "agent.service_switched"]
    assert switched == [(agent.user_id, "sales", False), (agent.user_id, "sales", True)]


async def test_duty_off_duty_holds_invitations_until_back_on_duty(world: World) -> None:
    [agent] = await registered(world, 1)
    off = await reply_card(agent, "duty Off Duty", "Your status")
    assert facts_of(off)["State"] == "Off duty"
    assert facts_of(off)["Duty profile"] == "Off Duty"
    await stays_queued(world, agent)
    refused = await reply_text(agent, "duty Holiday")
    assert refused == "There is no profile 'Holiday'. Profiles: Duty, Off Duty."
    on = await reply_card(agent, "duty Duty", "Your status")
    assert facts_of(on)["Duty profile"] == "Duty"
    offer = await offer_for(agent)
    assert "Jane Doe" in shown(offer.card)
    # The profile buttons of the status card switch too; ringing offers are declined.
    switch = find_action(on, "duty")
    assert switch is not None and switch["data"] == {"profile": "Off Duty"}
    status = await click(agent, "duty", switch["data"])
    assert facts_of(status)["State"] == "Off duty"
    await card_saying(world, offer.card_id, "Declined")


async def test_reset_command_clears_rona(world: World) -> None:
    first, second = await registered(world, 1, 2)
    await second.say("duty Off Duty")
    await new_task(world)
    await rona(world, first)
    assert await state_of(first) == "RONA"
    assert await reply_text(first, "reset") == (
        "RONA is reset: you can receive invitations again.")
    offer = await offer_for(first)  # the task waited in the queue and rings again
    assert "Jane Doe" in shown(offer.card)
    assert await state_of(first) == "Ringing"


async def test_nar_requests_are_filled_and_unknown_reasons_refused(world: World) -> None:
    [agent] = await registered(world, 1)
    nothing = await reply_card(agent, "nar", "Not-available reasons")
    assert "Nothing to fill out." in shown(nothing)
    await new_task(world)
    await rona(world, agent)
    await world.advance(5)
    await agent.say("duty Off Duty")  # a second request, the most recent one
    form = await reply_card(agent, "nar", "Not-available reasons")
    assert "Why were you not available?" in shown(form)
    assert "1 more request waiting after this one." in shown(form)
    [reasons] = [i for i in of_type(form, "Input.ChoiceSet") if i["id"] == "nar_reason"]
    assert [c["value"] for c in reasons["choices"]] == [
        "Break", "Meeting", "Lunch", "Training", "Other"]
    fill = find_action(form, "fill_nar")
    assert fill is not None
    request = fill["data"]["request_id"]

    refused = await click(agent, "fill_nar", {"request_id": request, "nar_reason": "Nap"})
    assert "'Nap' is not a not-available reason." in shown(refused)
    assert button(refused, "fill_nar")["data"]["request_id"] == request
    empty = await click(agent, "fill_nar", {"request_id": request})
    assert "Choose a reason." in shown(empty)

    first = await click(agent, "fill_nar", {"request_id": request, "nar_reason": "Break"})
    assert "more request" not in shown(first)
    older = find_action(first, "fill_nar")
    assert older is not None and older["data"]["request_id"] != request
    again = await click(agent, "fill_nar", {"request_id": request, "nar_reason": "Break"})
    assert "already answered" in shown(again)
    done = await click(agent, "fill_nar", {"request_id": older["data"]["request_id"],
                                           "nar_reason": "Lunch"})
    assert "Nothing to fill out." in shown(done)
    assert "Not-available reasons" not in facts_of(
        await reply_card(agent, "status", "Your status"))


async def test_unregister_stops_invitations(world: World) -> None:
    [agent] = await registered(world, 1)
    task = await new_task(world)
    offer = await offer_for(agent)
    answer = await reply_text(agent, "unregister")
    assert answer.startswith("You are unregistered and will get no more invitations.")
    await card_saying(world, offer.card_id, "Declined")  # the ringing offer ends
    assert (await task_of(world, task.id)).state is TaskState.QUEUED
    await world.advance(1)
    await new_task(world, customer="John Roe")
    await world.advance(60)
    await settle(world)
    assert agent.buttons("accept") == []
    assert "not registered" in await reply_text(agent, "status")
    await agent.say("register")
    again = await offer_for(agent)
    assert "Jane Doe" in shown(again.card)  # the oldest waiting task first


# -- My Sessions --------------------------------------------------------------------------------

def entries(card: dict[str, Any]) -> list[dict[str, Any]]:
    """My Sessions entries as shown: headline, detail line, Complete button."""
    found = []
    for box in of_type(card, "Container"):
        lines = [i["text"] for i in box["items"] if i.get("type") == "TextBlock"]
        if len(lines) >= 2 and lines[1].startswith("💬 Chat · "):
            found.append({"head": lines[0], "customer": lines[1].split(" · ")[1],
                          "complete": find_action(box, "complete")})
    return found


async def history(world: World, agent: TeamsAgent) -> None:
    """Alice accepted and saved, Bob declined, Carol RONA, Dave accepted, Erin cancelled."""
    await new_task(world, customer="Alice")
    offer = await offer_for(agent)
    await click(agent, "accept", {"session_id": offer.session_id}, offer.card_id)
    await click(agent, "terminate", {"session_id": offer.session_id}, offer.card_id)
    await click(agent, "save_wrapup", {"session_id": offer.session_id, "tags": "VIP, Renewal"},
                offer.card_id)
    await world.advance(10)
    bob = await new_task(world, customer="Bob")
    offer = await offer_for(agent)
    await click(agent, "decline", {"session_id": offer.session_id}, offer.card_id)
    await world.engine.run(lifecycle.cancel_task, bob.id)  # persistent RONA held it back
    await agent.say("reset")
    await world.advance(10)
    carol = await new_task(world, customer="Carol")
    await rona(world, agent)
    await world.engine.run(lifecycle.cancel_task, carol.id)
    await agent.say("reset")
    await world.advance(10)
    await new_task(world, customer="Dave")
    offer = await offer_for(agent)
    await click(agent, "accept", {"session_id": offer.session_id}, offer.card_id)
    await click(agent, "terminate", {"session_id": offer.session_id}, offer.card_id)
    await world.advance(10)
    erin = await new_task(world, "support", customer="Erin")
    await offer_for(agent)
    await world.engine.run(lifecycle.cancel_task, erin.id)


# Both services store conversation context, so My Sessions keeps customer names after the end.
HISTORY_SERVICES = (
    {"id": "sales", "name": "Sales", "acw": {"duration": "0s"},
     "distribution": {"persistent_rona": True}, "context": {"store_data": True}},
    {"id": "support", "name": "Support", "acw": {"duration": "0s"},
     "context": {"store_data": True}},
)


async def test_my_sessions_shows_not_available_once_context_was_removed(
        serve: Serve, tmp_path: Path) -> None:
    tables = ({**HISTORY_SERVICES[0], "context": {"store_data": False}}, HISTORY_SERVICES[1])
    async with serve(services_of(*tables), tmp_path / "sb.db") as world:
        [agent] = await registered(world, 1)
        await history(world, agent)
        listed = entries(await reply_card(agent, "sessions", "My Sessions"))
        # Sales did not opt in: its concluded entries lost the customer; Support kept Erin.
        assert listed[0]["customer"] == "Erin"
        assert {e["customer"] for e in listed[1:] if "Sales" in e["head"]} <= {
            "Not available", "Dave"}  # Dave's task may still be live
        assert "Not available" in [e["customer"] for e in listed]


async def test_my_sessions_lists_results_newest_first_with_open_entries(
        serve: Serve, tmp_path: Path) -> None:
    async with serve(services_of(*HISTORY_SERVICES), tmp_path / "sb.db") as world:
        [agent] = await registered(world, 1)
        await history(world, agent)
        card = await reply_card(agent, "sessions", "My Sessions")
        listed = entries(card)
        assert [e["customer"] for e in listed] == ["Erin", "Dave", "Carol", "Bob", "Alice"]
        assert [e["head"] for e in listed] == [
            "ℹ **Cancelled** · Support",
            "ℹ **Accepted** · Sales",
            "ℹ **RONA** · Sales",
            "ℹ **Declined** · Sales",
            "**Accepted** · Sales",  # saved: no longer open
        ]
        assert [e["complete"] is not None for e in listed] == [True, True, True, True, False]
        assert "actions" not in card  # one page: no Next, no Previous

        # Complete on an open entry brings up its wrap-up form; saving concludes it.
        dave = listed[1]["complete"]["data"]
        form = await click(agent, "complete", dave)
        assert "Dave" in shown(form) and "Wrap-up" in shown(form)
        assert button(form, "save_wrapup")["data"] == dave
        saved = await click(agent, "save_wrapup", {**dave, "new_tags": "callback"})
        assert "callback" in shown(saved) and find_action(saved, "save_wrapup") is None
        card = await reply_card(agent, "sessions", "My Sessions")
        assert entries(card)[1]["head"] == "**Accepted** · Sales"
        assert entries(card)[1]["complete"] is None
        declined = await click(agent, "complete", listed[3]["complete"]["data"])
        assert "Bob" in shown(declined) and "Result: Declined" in shown(declined)


async def test_my_sessions_search_narrows_by_service_customer_and_tag(
        serve: Serve, tmp_path: Path) -> None:
    async with serve(services_of(*HISTORY_SERVICES), tmp_path / "sb.db") as world:
        [agent] = await registered(world, 1)
        await history(world, agent)
        for query, expected in (("vip", ["Alice"]), ("renewal", ["Alice"]),
                                ("carol", ["Carol"]), ("Support", ["Erin"]),
                                ("sales", ["Dave", "Carol", "Bob", "Alice"]),
                                ("nobody", [])):
            card = await reply_card(agent, f"sessions {query}", "My Sessions")
            assert f"Search: {query}" in shown(card)
            assert [e["customer"] for e in entries(card)] == expected, query
            if not expected:
                assert "No sessions found." in shown(card)


async def test_my_sessions_pages_with_next_and_previous(serve: Serve, tmp_path: Path) -> None:
    async with serve(services_of(*HISTORY_SERVICES), tmp_path / "sb.db") as world:
        await _pages_with_next_and_previous(world)


async def _pages_with_next_and_previous(world: World) -> None:
    [agent] = await registered(world, 1)
    for n in range(1, 18):
        task = await new_task(world, customer=f"Customer {n:02d}")
        offer = await offer_for(agent)
        await world.engine.run(lifecycle.cancel_task, task.id)
        await card_saying(world, offer.card_id, "Cancelled by customer")
        await world.advance(1)
    first = await reply_card(agent, "sessions", "My Sessions")
    assert [e["customer"] for e in entries(first)] == [f"Customer {n:02d}"
                                                        for n in range(17, 2, -1)]
    assert [a["title"] for a in first["actions"]] == ["Next"]
    following = first["actions"][0]
    no_filters = {"query": "", "result": "", "modality": "", "period": ""}
    assert following["data"] == {**no_filters, "page": 1}
    second = await click(agent, "sessions_page", following["data"])
    assert [e["customer"] for e in entries(second)] == ["Customer 02", "Customer 01"]
    assert [a["title"] for a in second["actions"]] == ["Previous"]
    back = await click(agent, "sessions_page", second["actions"][0]["data"])
    assert entries(back) == entries(first)
    # Paging keeps the search.
    searched = await reply_card(agent, "sessions customer", "My Sessions")
    nxt = searched["actions"][0]
    assert nxt["data"] == {**no_filters, "query": "customer", "page": 1}
    assert len(entries(await click(agent, "sessions_page", nxt["data"]))) == 2


# -- the chatroom in local mode (the personal chat) ---------------------------------------------

async def connected(world: World, agent: TeamsAgent) -> tuple[str, str, str]:
    """Accept a Sales chat; (task id, session id, card id) once the chat header arrived."""
    task = await new_task(world)
    offer = await offer_for(agent)
    await click(agent, "accept", {"session_id": offer.session_id}, offer.card_id)
    await eventually(lambda: [c for c in agent.cards() if "Sales ¦ Jane Doe" in shown(c["card"])])
    return task.id, offer.session_id, offer.card_id


async def agent_lines(world: World, task_id: str) -> list[str]:
    """What the agent sent the customer, from the task's transcript."""
    messages = await world.engine.run(conversation.transcript, task_id)
    return [m.text for m in messages if m.sender.value == "agent"]


async def test_local_chatroom_relays_plain_text_to_the_customer(world: World) -> None:
    [agent] = await registered(world, 1)
    task_id, _, _ = await connected(world, agent)
    await agent.say("One moment please")
    assert await agent_lines(world, task_id) == ["One moment please"]
    await world.engine.run(conversation.customer_message, task_id, "Thanks")
    await eventually(lambda: "Jane Doe: Thanks" in agent.texts())
    # Commands still work in the personal chat while a chat runs there.
    assert await state_of(agent) == "Busy"


async def test_local_chatroom_end_terminates_the_session(world: World) -> None:
    [agent] = await registered(world, 1)
    task_id, session_id, card_id = await connected(world, agent)
    answer = await reply_text(agent, "end")
    assert await agent_lines(world, task_id) == []  # "end" is not sent to the customer
    assert answer == "The session ended. Your card now has the wrap-up form."
    form = await card_saying(world, card_id, "Wrap-up", "After-call work ends at")
    assert find_action(form, "end_acw") is not None
    assert [(s.id, s.phase.value) for s in await sessions_of(world, task_id)] == [
        (session_id, "acw")]


async def test_local_chatroom_transfer_requeues_in_another_service(world: World) -> None:
    first, second = await registered(world, 1, 2)
    task_id, _, _ = await connected(world, first)
    answer = await reply_text(first, "transfer Support")
    assert await agent_lines(world, task_id) == []
    assert answer == "Transferred to Support."
    offer = await offer_for(second)
    assert "Call flow: Sales → Support" in shown(offer.card)
    assert (await task_of(world, task_id)).call_flow == ["sales", "support"]


async def test_transfer_button_requeues_with_the_call_flow(world: World) -> None:
    """The same transfer from the accepted card's form (Action.Execute `transfer`)."""
    first, second = await registered(world, 1, 2)
    task_id, session_id, card_id = await connected(world, first)
    accepted = card_now(world, card_id)
    [targets] = [i for i in of_type(accepted, "Input.ChoiceSet") if i["id"] == "target_service"]
    assert [c["value"] for c in targets["choices"]] == ["support"]
    moved = await click(first, "transfer", {"session_id": session_id,
                                            "target_service": "support"}, card_id)
    assert "Wrap-up" in shown(moved) and find_action(moved, "save_wrapup") is not None
    offer = await offer_for(second)
    assert "Call flow: Sales → Support" in shown(offer.card)
    assert (await task_of(world, task_id)).call_flow == ["sales", "support"]


# -- bad input on /api/messages -----------------------------------------------------------------

async def post_raw(world: World, body: bytes, content_type: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    async with world.client.post(world.server.make_url("/api/messages"), data=body,
                                 headers=headers,
                                 skip_auto_headers=() if content_type else ("Content-Type",)
                                 ) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


def activity(**changes: Any) -> dict[str, Any]:
    base = act.message("http://127.0.0.1:9", "a:personal-1", "29:agent-1", "Agent 1", "help")
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


async def test_bad_requests_are_client_errors_with_a_message(world: World) -> None:
    good = json.dumps(activity(serviceUrl=world.service_url)).encode()
    cases: list[tuple[str, bytes, str | None, int, str]] = [
        ("malformed JSON", b'{"type": "message", ', "application/json", 400, "not valid JSON"),
        ("not UTF-8", b'{"type": "\xff"}', "application/json", 400, "not valid UTF-8"),
        ("NaN", good[:-1] + b', "value": {"x": NaN}}', "application/json", 400,
         "not valid JSON"),
        ("no Content-Type", good, None, 415, "Content-Type: application/json"),
        ("text/plain", good, "text/plain", 415, "Content-Type: application/json"),
        ("a JSON array", b"[]", "application/json", 400, "JSON object"),
        ("no type", json.dumps(activity(type=None)).encode(), "application/json", 400,
         "no type"),
        ("no conversation", json.dumps(activity(conversation=None)).encode(),
         "application/json", 400, "conversation"),
        ("no serviceUrl", json.dumps(activity(serviceUrl=None)).encode(), "application/json",
         400, "serviceUrl"),
        ("no from", json.dumps(activity(**{"from": None})).encode(), "application/json", 400,
         "from"),
        ("conversation is a string", json.dumps(activity(conversation="x")).encode(),
         "application/json", 400, ""),
    ]
    for name, body, content_type, status, words in cases:
        got, answer = await post_raw(world, body, content_type)
        assert got == status, (name, got, answer)
        assert isinstance(answer, dict) and words in answer.get("error", ""), (name, answer)
    too_big = json.dumps(activity(text="x" * 300_000)).encode()
    got, _ = await post_raw(world, too_big, "application/json")
    assert got == 413


def invoke(world: World, name: str | None, value: Any) -> dict[str, Any]:
    activity = act.card_action(world.service_url, "a:personal-1", "29:agent-1", "Agent 1",
                               "accept", {})
    activity["value"] = value
    if name is None:
        del activity["name"]
    else:
        activity["name"] = name
    return activity


async def test_bad_invokes_are_never_server_errors(
        world: World, card_log: CardLog, request: pytest.FixtureRequest) -> None:
    agent = world.agent(1)
    await agent.install()
    for name in ("composeExtension/query", "task/fetch", "no/such-invoke", None):
        status, body = await world.post(invoke(world, name, {"queryText": "x"}))
        assert status == 501 or 400 <= status < 500, (name, status, body)
        assert isinstance(body, dict) and body.get("message"), (name, body)
    for value in ({"action": {"type": "Action.Execute", "data": {}}}, {"action": "accept"},
                  {}, "accept", None):
        status, body = await world.post(invoke(world, "adaptiveCard/action", value))
        assert status == 400, (value, status, body)
        assert body == {"statusCode": 400, "type": "application/vnd.microsoft.error",
                        "value": {"code": "BadRequest", "message": "The action has no verb."}}
    # Known shapes with wrong contents answer a card (200), never an error.
    for verb, data in (("launch_rockets", {}), ("accept", {"session_id": 42}),
                       ("accept", {}), ("sessions_page", {"page": "x", "query": 3}),
                       ("fill_nar", {"request_id": 7, "nar_reason": "Break"}),
                       ("duty", {"profile": ["Duty"]})):
        status, body = await world.post(invoke(world, "adaptiveCard/action", {
            "action": {"type": "Action.Execute", "verb": verb, "data": data}}))
        assert status == 200 and body["statusCode"] == 200, (verb, status, body)
        card_log.add(request.node.nodeid, f"invoke {verb}", body["value"])
    status, body = await world.post(invoke(world, "application/search", "not an object"))
    assert status == 200 and body["value"] == {"results": []}


# -- every card above passes the official parser and the size budget ------------------------------

@pytest.mark.needs_node("adaptivecards")
def test_every_card_seen_is_valid_and_fits(card_log: CardLog,
                                           request: pytest.FixtureRequest) -> None:
    check_seen_cards(card_log.of(request.node.nodeid.partition("::")[0]))
