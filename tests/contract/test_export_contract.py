"""The reporting queries of the session repository and the event log, on both backends."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.domain.events import Event
from bot.domain.session import Phase, SessionResult
from bot.services.ports import EventFilter, SessionFilter, Store, UnitOfWork
from tests.contract.test_storage_contract import add_all, at, make_session, read, write


async def test_export_filters_and_keyset_paging(store: Store) -> None:
    sessions = [
        replace(make_session("s1", agent_id="a1", offered=0, tags=("VIP",)),
                phase=Phase.ENDED, result=SessionResult.ACCEPTED),
        replace(make_session("s2", agent_id="a2", offered=10),
                phase=Phase.ENDED, result=SessionResult.DECLINED),
        replace(make_session("s3", agent_id="a1", service="support", offered=20),
                phase=Phase.ENDED, result=SessionResult.ACCEPTED),
        make_session("s4", agent_id="a1", offered=20),  # ties with s3 on time: id decides
    ]
    await add_all(store, *sessions)

    async def ids(where: SessionFilter, after: tuple[datetime, str] | None = None,
                  limit: int = 10) -> list[str]:
        async def query(uow: UnitOfWork) -> list[str]:
            found = await uow.sessions.export(where, after, limit, 100)
            return [s.id for s in found.found]
        return await read(store, query)

    assert await ids(SessionFilter()) == ["s1", "s2", "s3", "s4"]
    assert await ids(SessionFilter(service_id="sales")) == ["s1", "s2", "s4"]
    assert await ids(SessionFilter(services=frozenset({"support"}))) == ["s3"]
    assert await ids(SessionFilter(services=frozenset())) == []
    assert await ids(SessionFilter(agent_id="a1", result="accepted")) == ["s1", "s3"]
    assert await ids(SessionFilter(tag="vip")) == ["s1"]
    assert await ids(SessionFilter(since=at(10), until=at(20))) == ["s2"]
    assert await ids(SessionFilter(), limit=2) == ["s1", "s2"]
    assert await ids(SessionFilter(), after=(at(10), "s2"), limit=2) == ["s3", "s4"]
    assert await ids(SessionFilter(), after=(at(20), "s3")) == ["s4"]


async def test_a_page_says_where_to_go_on_and_reaches_every_match(store: Store) -> None:
    await add_all(store, *[make_session(f"s{n:02}", agent_id="a2" if n in (3, 11) else "a1",
                                        offered=n // 2) for n in range(14)])

    async def page(where: SessionFilter, after: tuple[datetime, str] | None, limit: int,
                   scan: int) -> Any:
        return await read(store, lambda uow: uow.sessions.export(where, after, limit, scan))

    full = await page(SessionFilter(), None, 2, 5)
    assert [s.id for s in full.found] == ["s00", "s01"]
    assert full.resume == (at(0), "s01")
    last = await page(SessionFilter(), (at(6), "s12"), 5, 5)
    assert [s.id for s in last.found] == ["s13"] and last.resume is None
    # Following `resume` finds every match, whatever a single read may have stopped short of.
    seen: list[str] = []
    after: tuple[datetime, str] | None = None
    for _ in range(20):
        found = await page(SessionFilter(agent_id="a2"), after, 10, 5)
        seen += [s.id for s in found.found]
        if found.resume is None:
            break
        assert found.resume > (after or (at(-1), ""))
        after = found.resume
    assert seen == ["s03", "s11"]


async def test_event_export_filters_in_the_store_and_goes_on(store: Store) -> None:
    def event(n: int) -> Event:
        return Event(name="offer.declined" if n % 7 == 3 else "offer.created", at=at(n),
                     task_id=f"t{n % 3}", agent_id=f"a{n % 2}",
                     service_id="support" if n % 5 == 0 else "sales")

    async def append(uow: UnitOfWork) -> None:
        for n in range(1, 31):
            await uow.events.append(event(n))

    await write(store, append)

    async def export(where: EventFilter, after: int, limit: int, scan: int) -> Any:
        return await read(store, lambda uow: uow.events.export(where, after, limit, scan))

    everything = await export(EventFilter(), 0, 100, 100)
    assert [e.seq for e in everything.found] == list(range(1, 31))
    assert everything.resume is None
    page = await export(EventFilter(name="offer.declined"), 0, 2, 100)
    assert [e.seq for e in page.found] == [3, 10] and page.resume == 10
    short = await export(EventFilter(name="offer.declined"), 0, 10, 8)
    assert [e.seq for e in short.found] == [3] and short.resume == 8
    rest = await export(EventFilter(name="offer.declined"), 8, 10, 100)
    assert [e.seq for e in rest.found] == [10, 17, 24] and rest.resume is None
    nothing = await export(EventFilter(name="nothing"), 0, 1, 12)
    assert nothing.found == [] and nothing.resume == 12
    scoped = await export(EventFilter(services=frozenset({"support"}), agent_id="a0"), 0, 100,
                          100)
    assert [e.seq for e in scoped.found] == [10, 20, 30]
    timed = await export(EventFilter(since=at(5), until=at(8), service_id="sales"), 0, 100, 100)
    assert [e.seq for e in timed.found] == [6, 7]
    assert (await export(EventFilter(), 30, 10, 100)).resume is None
