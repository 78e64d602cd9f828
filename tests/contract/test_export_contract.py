"""The reporting query of the session repository, on both backends."""

from __future__ import annotations

from dataclasses import replace

from bot.domain.session import Phase, SessionResult
from bot.services.ports import SessionFilter, Store, UnitOfWork
from tests.contract.test_storage_contract import add_all, at, make_session, read


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

    async def ids(where: SessionFilter, after: tuple[object, str] | None = None,
                  limit: int = 10) -> list[str]:
        async def query(uow: UnitOfWork) -> list[str]:
            found = await uow.sessions.export(where, after, limit)  # type: ignore[arg-type]
            return [s.id for s in found]
        return await read(store, query)

    assert await ids(SessionFilter()) == ["s1", "s2", "s3", "s4"]
    assert await ids(SessionFilter(service_id="sales")) == ["s1", "s2", "s4"]
    assert await ids(SessionFilter(agent_id="a1", result="accepted")) == ["s1", "s3"]
    assert await ids(SessionFilter(tag="vip")) == ["s1"]
    assert await ids(SessionFilter(since=at(10), until=at(20))) == ["s2"]
    assert await ids(SessionFilter(), limit=2) == ["s1", "s2"]
    assert await ids(SessionFilter(), after=(at(10), "s2"), limit=2) == ["s3", "s4"]
    assert await ids(SessionFilter(), after=(at(20), "s3")) == ["s4"]
