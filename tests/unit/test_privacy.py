"""Customer context: removed at conclusion unless opted in, purged after 30 days, per hop."""

from __future__ import annotations

import json

from bot.bootstrap import build_engine
from bot.domain.customer import Customer
from bot.domain.events import Event
from bot.domain.service import Catalog, Modality
from bot.domain.session import Session
from bot.services import privacy
from bot.services.context import Ctx
from bot.services.dispatch import create_task
from bot.services.engine import Engine
from bot.services.lifecycle import terminate, transfer
from bot.services.offers import accept
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.fakes import FakeClock
from tests.scenario import add_agent, advance, load_task, ringing, sessions_of


def three_services(store_a: bool, store_b: bool, store_c: bool) -> Catalog:
    return catalog(
        {"id": "a", "context": {"store_data": store_a}, "acw": {"duration": "0s"}},
        {"id": "b", "context": {"store_data": store_b}, "acw": {"duration": "0s"}},
        {"id": "c", "context": {"store_data": store_c}, "acw": {"duration": "0s"}},
    )


async def accept_next(engine: Engine, task_id: str) -> str:
    [offer] = await ringing(engine, task_id)
    await engine.run(accept, offer.id, offer.agent_id)
    return offer.id


def record(session: Session) -> dict[str, str] | None:
    """What a service's stored session shows, cell by cell."""
    if session.customer is None:
        return None
    return {"Customer Name": session.customer.name, **session.customer.params}


async def test_seed_transfer_table_accumulates_per_opted_in_service(
        store: SqliteStore, clock: FakeClock) -> None:
    engine = build_engine(store, clock, three_services(True, False, True))
    for n in (1, 2, 3):
        await add_agent(engine, n)
    task = await engine.run(create_task, "a", Modality.IM, customer=Customer(
        name="John Doe", params={"Spoken Language": "German", "Ticket ID": "#1111"}))
    in_a = await accept_next(engine, task.id)
    await engine.run(transfer, in_a, "b")
    await engine.run(privacy.set_params, task.id, {"Gender": "Male", "Ticket ID": "#3151"})
    in_b = await accept_next(engine, task.id)
    await engine.run(transfer, in_b, "c")
    in_c = await accept_next(engine, task.id)
    await engine.run(terminate, in_c)

    stored = {s.service_id: record(s) for s in await sessions_of(engine, task.id)
              if s.result and s.result.value == "accepted"}
    assert stored["a"] == {"Customer Name": "John Doe", "Spoken Language": "German",
                           "Ticket ID": "#1111"}
    assert stored["b"] is None  # not opted in: "Not available (not stored)"
    assert stored["c"] == {"Customer Name": "John Doe", "Spoken Language": "German",
                           "Gender": "Male", "Ticket ID": "#3151"}
    concluded = await load_task(engine, task.id)
    assert concluded.customer == Customer() and concluded.call_flow == ["a", "b", "c"]


async def test_context_gone_at_conclusion_unless_opted_in_and_30_days_later(
        store: SqliteStore, clock: FakeClock) -> None:
    engine = build_engine(store, clock, catalog(
        {"id": "keep", "context": {"store_data": True}, "acw": {"duration": "0s"}},
        {"id": "drop", "acw": {"duration": "0s"}}))
    await add_agent(engine, 1)
    kept = await engine.run(create_task, "keep", Modality.IM,
                            customer=Customer(name="Ann Example", email="ann@example.com"))
    await engine.run(terminate, await accept_next(engine, kept.id))
    dropped = await engine.run(create_task, "drop", Modality.IM,
                               customer=Customer(name="Bob Example", phone="+41 79 000 00 00"))
    await engine.run(terminate, await accept_next(engine, dropped.id))

    [gone] = await sessions_of(engine, dropped.id)
    assert gone.customer is None and gone.customer_label is None
    [stays] = await sessions_of(engine, kept.id)
    assert stays.customer is not None and stays.customer.email == "ann@example.com"
    assert "Example" not in json.dumps([e.data for e in await _events(engine)])

    await advance(engine, clock, 30 * 86400 - 1)
    assert (await sessions_of(engine, kept.id))[0].customer is not None
    await advance(engine, clock, 1)
    assert (await sessions_of(engine, kept.id))[0].customer is None


async def test_opting_in_later_does_not_resurrect(store: SqliteStore, clock: FakeClock) -> None:
    before = build_engine(store, clock, catalog({"id": "sales", "acw": {"duration": "0s"}}))
    await add_agent(before, 1)
    task = await before.run(create_task, "sales", Modality.IM, customer=Customer(name="Cy"))
    await before.run(terminate, await accept_next(before, task.id))
    after = build_engine(store, clock, catalog({"id": "sales", "acw": {"duration": "0s"},
                                          "context": {"store_data": True}}))
    [session] = await sessions_of(after, task.id)
    assert session.customer is None and session.store_context is False


async def test_context_is_kept_while_live(engine: Engine) -> None:
    await add_agent(engine, 1)
    task = await engine.run(create_task, "sales", Modality.IM, customer=Customer(name="Di"))
    session_id = await accept_next(engine, task.id)
    [session] = await sessions_of(engine, task.id)
    assert session.id == session_id and session.customer_label == "Di"
    assert (await load_task(engine, task.id)).customer.name == "Di"


async def _events(engine: Engine) -> list[Event]:
    async def read(ctx: Ctx) -> list[Event]:
        return await ctx.uow.events.after(0, 10_000)
    return await engine.run(read)
