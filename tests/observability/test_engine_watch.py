"""The engine as traces and metrics show it: a span per use case named after it (or after the
use case it runs), its lost races counted; a timer's unit of work named after its handler."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.bootstrap import build_engine
from bot.domain.timers import RING_TIMEOUT
from bot.observability.observer import EngineObserver
from bot.services.context import Ctx
from bot.services.ports import ConflictError
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.fakes import FakeClock
from tests.observability.recorded import Recorded


async def counted(ctx: Ctx) -> int:
    return await ctx.uow.counters.next("watched")


async def runs(ctx: Ctx, use_case: object) -> int:
    """Runs another use case, as queries.acted does."""
    assert callable(use_case)
    result: int = await use_case(ctx)
    return result


async def test_units_of_work_are_spans_and_lost_races_are_counted(store: SqliteStore) -> None:
    recorded = Recorded()
    engine = build_engine(store, FakeClock(), catalog({"id": "sales"}),
                          observer=EngineObserver(recorded.telemetry))
    lost = 0

    async def loses_twice(ctx: Ctx) -> int:
        nonlocal lost
        value = await counted(ctx)
        if lost < 2:
            lost += 1
            raise ConflictError("lost a race")
        return value

    assert await engine.run(loses_twice) == 1  # the lost attempts rolled back
    assert await engine.run(runs, counted) == 2
    spans = recorded.spans()
    assert [s.name for s in spans] == ["test_engine_watch.loses_twice",
                                       "test_engine_watch.counted"]
    assert spans[0].attributes is not None
    assert spans[0].attributes["switchboard.conflicts"] == 2
    assert "switchboard.conflicts" not in (spans[1].attributes or {})
    use_case = "test_engine_watch.loses_twice"
    assert recorded.value("switchboard.store.conflicts", use_case=use_case) == 2
    assert recorded.value("switchboard.store.retries", use_case=use_case) == 2
    assert spans[0].attributes["switchboard.retries"] == 2


async def test_a_use_case_that_always_loses_counts_one_retry_less(store: SqliteStore) -> None:
    recorded = Recorded()
    engine = build_engine(store, FakeClock(), catalog({"id": "sales"}),
                          observer=EngineObserver(recorded.telemetry))
    engine.retries = 3

    async def always_loses(ctx: Ctx) -> None:
        raise ConflictError("lost again")

    with pytest.raises(ConflictError):
        await engine.run(always_loses)
    use_case = "test_engine_watch.always_loses"
    assert recorded.value("switchboard.store.conflicts", use_case=use_case) == 3
    assert recorded.value("switchboard.store.retries", use_case=use_case) == 2
    [span] = recorded.spans()
    assert span.attributes is not None and span.attributes["switchboard.retries"] == 2


async def test_a_timer_runs_under_its_handlers_name(store: SqliteStore) -> None:
    recorded = Recorded()
    clock = FakeClock()
    engine = build_engine(store, clock, catalog({"id": "sales"}),
                          observer=EngineObserver(recorded.telemetry))

    async def arm(ctx: Ctx) -> None:
        await ctx.arm_in(RING_TIMEOUT, "no-such-session", timedelta(seconds=1))

    await engine.run(arm)
    clock.advance(2)
    assert await engine.jobs.fire_due() == 1
    assert "offers.ring_timeout" in [s.name for s in recorded.spans()]
