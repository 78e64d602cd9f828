"""My Sessions: live states, the detail card, search over customer and email, filters, paging."""

from __future__ import annotations

from typing import Any

import pytest

from bot.bootstrap import build_engine
from bot.cards import in_words
from bot.dialogs.caller import Caller, Member
from bot.dialogs.desk import Desk
from bot.domain.customer import Customer
from bot.domain.service import Modality
from bot.services.dispatch import create_task
from bot.services.engine import Engine
from bot.services.lifecycle import end_acw, terminate
from bot.services.offers import accept
from bot.services.wrapup import save_wrapup
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.cards import walk
from tests.cards.walk import shown_texts
from tests.fakes import FakeClock
from tests.scenario import add_agent, new_task, ringing


class Directory:
    async def lookup(self, caller: Caller) -> Member:
        return Member(caller.name, None, None, None)


def texts(card: dict[str, Any]) -> str:
    return "\n".join(shown_texts(card))


@pytest.fixture
def desk(engine: Engine) -> Desk:
    return Desk(engine, Directory())


async def test_a_ringing_offer_shows_ringing(engine: Engine, desk: Desk) -> None:
    agent = await add_agent(engine, 1)
    task = await new_task(engine, name="Jane Doe")
    [offer] = await ringing(engine, task.id)
    listing = texts(await desk.sessions_card(Caller(agent), 0, ""))
    assert "Ringing" in listing and "Accepted" not in listing
    status = texts(await desk.status_card(Caller(agent)))
    assert "Ringing" in status and "Accepted" not in status
    assert offer.agent_id == agent


async def test_the_detail_card_shows_times_codes_and_tags(
        store: SqliteStore, clock: FakeClock) -> None:
    engine = build_engine(store, clock, catalog({"id": "sales", "codes": {"primary": ["Sale"]}}))
    desk = Desk(engine, Directory())
    agent = await add_agent(engine, 1)
    task = await new_task(engine, name="Jane Doe")
    clock.advance(4)
    [offer] = await ringing(engine, task.id)
    await engine.run(accept, offer.id, agent)
    clock.advance(90)
    await engine.run(terminate, offer.id, agent_id=agent)
    await engine.run(save_wrapup, offer.id, agent, primary="Sale", secondary=None,
                     tags=["VIP", "Refund"])
    clock.advance(20)
    await engine.jobs.fire_due()  # ACW ends
    listing = await desk.sessions_card(Caller(agent), 0, "")
    (open_button,) = [a for a in walk.executes(listing) if a.get("verb") == "open_session"]
    detail = await desk.action(Caller(agent), "open_session", open_button["data"])
    shown = shown_texts(detail)
    facts = dict(zip(shown[shown.index("Customer"):][::2], shown[shown.index("Customer"):][1::2],
                     strict=False))
    assert facts["Customer"] == "Not available"  # the service does not store context
    assert facts["Ringing"] == in_words(4) and facts["Connected"] == in_words(90)
    assert facts["After-call work"] == in_words(20)
    assert facts["Primary code"] == "Sale" and facts["Tags"] == "VIP, Refund"


async def email_session(engine: Engine, agent: str) -> str:
    task = await engine.run(
        create_task, "sales", Modality.EMAIL,
        customer=Customer(name="Jane Doe", email="jane.doe@example.net", phone="+41 44 555 01 23"),
        content={"subject": "Refund for order 4711", "sender": "jane.doe@example.net",
                 "text": "Please refund."})
    [offer] = await ringing(engine, task.id)
    await engine.run(accept, offer.id, agent)
    await engine.run(terminate, offer.id, agent_id=agent)
    await engine.run(end_acw, offer.id, agent_id=agent)
    return offer.id


async def test_search_finds_email_phone_and_subject(store: SqliteStore, clock: FakeClock) -> None:
    # The service stores context: the concluded session keeps the customer for My Sessions.
    engine = build_engine(store, clock, catalog({"id": "sales", "context": {"store_data": True}}))
    desk = Desk(engine, Directory())
    agent = await add_agent(engine, 1)
    other = await new_task(engine, name="Someone Else")
    [offer] = await ringing(engine, other.id)
    await engine.run(accept, offer.id, agent)
    await engine.run(terminate, offer.id, agent_id=agent)
    await engine.run(end_acw, offer.id, agent_id=agent)
    wanted = await email_session(engine, agent)
    for query in ("jane.doe@example.net", "+41 44 555", "order 4711", "REFUND FOR"):
        card = await desk.sessions_card(Caller(agent), 0, query)
        found = [a["data"]["session_id"] for a in walk.executes(card)
                 if a.get("verb") == "open_session"]
        assert found == [wanted], query
    narrowed = await desk.action(Caller(agent), "sessions_page", {
        "page": 0, "search": "", "modality_filter": "email", "period_filter": "today",
        "result_filter": "accepted"})
    assert [a["data"]["session_id"] for a in walk.executes(narrowed)
            if a.get("verb") == "open_session"] == [wanted]


async def test_paging_reaches_the_16th_entry(engine: Engine, desk: Desk, clock: FakeClock) -> None:
    agent = await add_agent(engine, 1)
    first = ""
    for n in range(16):
        task = await new_task(engine, name=f"Customer {n}")
        [offer] = await ringing(engine, task.id)
        await engine.run(accept, offer.id, agent)
        await engine.run(terminate, offer.id, agent_id=agent)
        await engine.run(end_acw, offer.id, agent_id=agent)
        first = first or offer.id
        clock.advance(60)
    page_one = await desk.sessions_card(Caller(agent), 0, "")
    ids = [a["data"]["session_id"] for a in walk.executes(page_one)
           if a.get("verb") == "open_session"]
    assert len(ids) == 15 and first not in ids
    (following,) = [a for a in walk.executes(page_one) if a.get("title") == "Next"]
    page_two = await desk.action(Caller(agent), "sessions_page", following["data"])
    ids = [a["data"]["session_id"] for a in walk.executes(page_two)
           if a.get("verb") == "open_session"]
    assert first in ids  # the oldest, 16th entry
