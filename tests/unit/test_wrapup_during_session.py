"""Codes and tags from Accept on: saved during the session, kept through ACW, saved once."""

from __future__ import annotations

from typing import Any

import pytest

from bot.bootstrap import build_engine
from bot.dialogs.caller import Caller, Member
from bot.dialogs.desk import Desk
from bot.domain.agent import AgentState
from bot.domain.errors import Refused
from bot.services.engine import Engine
from bot.services.offers import accept
from bot.services.wrapup import save_wrapup
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.cards import walk
from tests.fakes import FakeClock
from tests.scenario import add_agent, advance, agent_state, new_task, ringing


class Directory:
    async def lookup(self, caller: Caller) -> Member:
        return Member(caller.name, None, None, None)


def facts(card: dict[str, Any]) -> dict[str, str]:
    return {f["title"]: f["value"] for s in walk.of_type(card, "FactSet") for f in s["facts"]}


@pytest.fixture
def coded(store: SqliteStore, clock: FakeClock) -> Engine:
    return build_engine(store, clock, catalog({"id": "sales", "codes": {
        "primary": ["Sale", "No sale"], "secondary": ["Follow-up"]}}))


async def test_codes_and_tags_saved_during_the_session_survive_acw_and_save_once(
        coded: Engine, clock: FakeClock) -> None:
    desk = Desk(coded, Directory())
    agent = await add_agent(coded, 1)
    task = await new_task(coded)
    [offer] = await ringing(coded, task.id)
    me = Caller(agent)
    accepted = await desk.action(me, "accept", {"session_id": offer.id})
    (form,) = [a for a in walk.of_type(accepted, "Action.ShowCard")
               if a["title"] == "Codes and tags"]
    assert {"primary_code", "secondary_code", "new_tags"} <= set(walk.inputs(form["card"]))

    saved = await desk.action(me, "save_wrapup", {
        "session_id": offer.id, "primary_code": "Sale", "new_tags": "VIP, renewal"})
    assert facts(saved)["Primary code"] == "Sale"
    assert facts(saved)["Tags"] == "VIP, renewal"
    assert "Codes and tags" not in [a["title"] for a in walk.of_type(saved, "Action.ShowCard")]
    assert await agent_state(coded, agent) is not AgentState.ACW  # the session still runs

    again = await desk.action(me, "save_wrapup", {"session_id": offer.id, "primary_code":
                                                  "No sale"})
    assert "already saved" in walk.all_text(again)
    assert facts(again)["Primary code"] == "Sale"
    with pytest.raises(Refused, match="already saved"):
        await coded.run(save_wrapup, offer.id, agent, primary="No sale", secondary=None,
                        tags=[])

    in_acw = await desk.action(me, "terminate", {"session_id": offer.id})
    assert await agent_state(coded, agent) is AgentState.ACW
    assert facts(in_acw)["Primary code"] == "Sale" and facts(in_acw)["Tags"] == "VIP, renewal"
    assert {a["verb"] for a in walk.executes(in_acw)} >= {"extend_acw", "end_acw"}
    await advance(coded, clock, 20)  # ACW ends as before
    assert await agent_state(coded, agent) is AgentState.AVAILABLE
    done = await desk.card_for(offer.id)
    assert facts(done)["Primary code"] == "Sale" and facts(done)["Tags"] == "VIP, renewal"


async def test_a_required_primary_code_is_still_required_during_the_session(
        coded: Engine) -> None:
    desk = Desk(coded, Directory())
    agent = await add_agent(coded, 1)
    task = await new_task(coded)
    [offer] = await ringing(coded, task.id)
    await coded.run(accept, offer.id, agent)
    card = await desk.action(Caller(agent), "save_wrapup", {"session_id": offer.id,
                                                            "new_tags": "vip"})
    assert "Choose a primary code" in walk.all_text(card)
    assert "Codes and tags" in [a["title"] for a in walk.of_type(card, "Action.ShowCard")]
