"""The board's read and the supervisor's actions on a real SQLite store, with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.bootstrap import build_engine
from bot.domain import events as ev
from bot.domain.agent import AgentState
from bot.domain.errors import NotFound, Refused, Stale
from bot.domain.events import Event
from bot.domain.service import Catalog
from bot.domain.session import Phase, SessionResult
from bot.domain.task import TaskState
from bot.services import agents as agent_cases
from bot.services import board, live_status, supervision
from bot.services.context import Ctx
from bot.services.engine import Engine
from bot.services.lifecycle import cancel_task, terminate
from bot.services.live_status import ServiceStatus
from bot.services.offers import accept, decline
from bot.storage.sqlite import SqliteStore
from tests import scenario as sc
from tests.builders import catalog
from tests.fakes import FakeClock

BOSS = board.Supervisor(upn="Boss@example.com")


def states(**counts: int) -> dict[str, int]:
    """Members by derived state, every state named (0 where none)."""
    return {state.value: counts.get(state.value, 0) for state in AgentState}
DAY = datetime(2026, 11, 2, tzinfo=UTC)


async def events_of(ctx: Ctx, task_id: str) -> list[Event]:
    return await ctx.uow.events.for_task(task_id)


def figures_of(found: board.ServiceBoard) -> board.DayFigures:
    assert found.figures is not None
    return found.figures


def at(hms: str) -> datetime:
    h, m, s = (int(x) for x in hms.split(":"))
    return DAY.replace(hour=h, minute=m, second=s)


@pytest.fixture
def services() -> Catalog:
    return catalog({"id": "sales", "supervisors": ["boss@example.com"], "acw": {"duration": "0s"},
                    "service_level": "20s", "distribution": {"ring_timeout": "60s"}},
                   {"id": "billing", "supervisors": ["other@example.com"]})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(at("08:59:00"))


@pytest.fixture
def engine(store: SqliteStore, clock: FakeClock, services: Catalog) -> Engine:
    return build_engine(store, clock, services)


async def scene(engine: Engine, clock: FakeClock) -> dict[str, str]:
    """Three agents, tasks across two hours: answered late, cancelled after a RONA, answered
    in time, then two left waiting (one of higher priority)."""
    one, two, three = [await sc.add_agent(engine, n) for n in (1, 2, 3)]
    ids: dict[str, str] = {}
    a = await sc.new_task(engine, name="Ann")  # 08:59:00, to Agent 1
    [offer_a] = await sc.ringing(engine, a.id)
    assert offer_a.agent_id == one
    await sc.advance(engine, clock, 30)
    await engine.run(accept, offer_a.id, one)  # answered after 30 s: outside the level
    await sc.advance(engine, clock, 5)
    await engine.run(agent_cases.set_duty, three, "Off Duty")  # 08:59:35
    await sc.advance(engine, clock, 5)
    b = await sc.new_task(engine, name="Bob")  # 08:59:40, to Agent 2, who does not answer
    [offer_b] = await sc.ringing(engine, b.id)
    assert offer_b.agent_id == two
    await sc.advance(engine, clock, 45)
    await engine.run(terminate, offer_a.id, agent_id=one)  # 09:00:25, no after-call work
    await sc.advance(engine, clock, 5)
    e = await sc.new_task(engine, name="Eve")  # 09:00:30, to Agent 1
    [offer_e] = await sc.ringing(engine, e.id)
    assert offer_e.agent_id == one
    await sc.advance(engine, clock, 10)  # 09:00:40: Bob's offer times out (RONA), Bob waits
    assert (await sc.load_task(engine, b.id)).state is TaskState.QUEUED
    await engine.run(accept, offer_e.id, one)  # answered after 10 s
    await sc.advance(engine, clock, 10)
    await engine.run(cancel_task, b.id)  # 09:00:50: Bob leaves after 70 s
    await sc.advance(engine, clock, 10)
    c = await sc.new_task(engine, name="Cy")  # 09:01:00, waits
    await sc.advance(engine, clock, 10)
    f = await sc.new_task(engine, name="Fay", priority=5)  # 09:01:10, waits, ahead of Cy
    await sc.advance(engine, clock, 50)  # 09:02:00
    ids.update(one=one, two=two, three=three, a=a.id, b=b.id, c=c.id, e=e.id, f=f.id,
               offer_e=offer_e.id)
    return ids


async def test_the_board_shows_queue_agents_sessions_and_figures_exactly(
        engine: Engine, clock: FakeClock) -> None:
    ids = await scene(engine, clock)
    [sales] = await engine.read(board.boards, BOSS, DAY)

    assert (sales.service_id, sales.name) == ("sales", "Sales")
    assert sales.picture == ServiceStatus(
        service_id="sales", queued=2, ringing=0, oldest_wait_seconds=60.0,
        agents=states(busy=1, off_duty=1, rona=1), sessions_live=1, sessions_acw=0)
    assert [(q.task_id, q.customer, q.modality, q.state, q.priority, q.waiting, q.call_flow)
            for q in sales.queue] == [
        (ids["f"], "Fay", "im", "queued", 5, timedelta(seconds=50), ("sales",)),
        (ids["c"], "Cy", "im", "queued", 0, timedelta(seconds=60), ("sales",)),
    ]
    assert [(a.agent_id, a.name, a.state, a.since, a.in_state, a.rona_until)
            for a in sales.agents] == [
        (ids["one"], "Agent 1", AgentState.BUSY, at("09:00:40"), timedelta(seconds=80), None),
        (ids["two"], "Agent 2", AgentState.RONA, at("09:00:40"), timedelta(seconds=80),
         at("09:10:40")),
        (ids["three"], "Agent 3", AgentState.OFF_DUTY, at("08:59:35"), timedelta(seconds=145),
         None),
    ]
    assert [(s.session_id, s.agent, s.customer, s.modality, s.phase, s.since)
            for s in sales.sessions] == [
        (ids["offer_e"], "Agent 1", "Eve", "im", "connected", at("09:00:40"))]

    figures = figures_of(sales)
    assert figures.results == {"answered": 2, "cancelled": 1, "expired": 0, "waiting": 0}
    assert [h.start.hour for h in figures.hours] == list(range(10))  # midnight to now
    assert figures.hours[8].results == {"answered": 1, "cancelled": 1, "expired": 0,
                                        "waiting": 0}
    assert figures.hours[9].results == {"answered": 1, "cancelled": 0, "expired": 0,
                                        "waiting": 0}
    assert sum(sum(h.results.values()) for h in figures.hours[:8]) == 0
    assert [(w.up_to, w.answered, w.unanswered) for w in figures.waits] == [
        (10, 1, 0), (20, 0, 0), (30, 1, 0), (60, 0, 0), (120, 0, 1), (300, 0, 0), (None, 0, 0)]
    assert figures.answered_within == 1
    assert figures.threshold == timedelta(seconds=20)
    assert figures.service_level == pytest.approx(1 / 3, abs=1e-4)
    assert not figures.partial


async def test_figures_count_only_what_happened_since_the_day_began(
        engine: Engine, clock: FakeClock) -> None:
    await scene(engine, clock)
    [sales] = await engine.read(board.boards, BOSS, at("09:00:00"))
    # Ann was offered at 08:59:00, Bob at 08:59:40: from 09:00 on, only Eve's offer counts.
    assert figures_of(sales).results == {"answered": 1, "cancelled": 0, "expired": 0, "waiting": 0}
    assert figures_of(sales).service_level == 1.0


async def test_a_day_that_began_more_than_a_day_ago_ends_24_hours_later(
        engine: Engine, clock: FakeClock) -> None:
    await scene(engine, clock)
    yesterday = at("09:00:00") - timedelta(hours=26)  # that day ended at 07:00 today
    [sales] = await engine.read(board.boards, BOSS, yesterday)
    assert figures_of(sales).results == {"answered": 0, "cancelled": 0, "expired": 0, "waiting": 0}
    assert len(figures_of(sales).hours) == 24


async def test_a_task_still_waiting_after_an_offer_counts_as_waiting(
        engine: Engine, clock: FakeClock) -> None:
    one = await sc.add_agent(engine, 1)
    task = await sc.new_task(engine, name="Ann")
    await sc.advance(engine, clock, 60)  # RONA: back in the queue
    assert await sc.agent_state(engine, one) is AgentState.RONA
    [sales] = await engine.read(board.boards, BOSS, DAY)
    assert figures_of(sales).results == {"answered": 0, "cancelled": 0, "expired": 0, "waiting": 1}
    assert figures_of(sales).service_level is None
    assert [q.task_id for q in sales.queue] == [task.id]


async def test_ringing_tasks_name_the_agent_they_ring(engine: Engine) -> None:
    one = await sc.add_agent(engine, 1)
    task = await sc.new_task(engine, name="Ann")
    [sales] = await engine.read(board.boards, BOSS, DAY)
    [entry] = sales.queue
    assert (entry.task_id, entry.state, entry.ringing) == (task.id, "ringing", (one,))
    [live] = sales.sessions
    assert (live.phase, live.agent_id) == ("ringing", one)
    assert sales.picture.agents == states(ringing=1)
    assert (sales.picture.ringing, sales.picture.waiting) == (1, 1)


async def test_a_board_only_for_supervisors(engine: Engine) -> None:
    with pytest.raises(Refused) as refused:
        await engine.read(board.boards, board.Supervisor("a1@example.com"), DAY)
    assert refused.value.code == "forbidden"
    with pytest.raises(Refused) as other:
        await engine.read(board.boards, BOSS, DAY, "billing")
    assert other.value.code == "forbidden"
    with pytest.raises(NotFound):
        await engine.read(board.boards, BOSS, DAY, "nope")
    by_object_id = board.Supervisor(None, "x")
    assert board.supervised(engine.catalog, by_object_id) == ()
    assert [b.picture.service_id for b in await engine.read(board.boards, BOSS, DAY)] == [
        "sales"]


async def test_the_board_and_the_status_api_show_one_picture(
        engine: Engine, clock: FakeClock) -> None:
    await scene(engine, clock)
    boards = await engine.read(board.boards, BOSS, DAY, figures_for=())
    status = await engine.read(live_status.services_status)
    assert [b.picture for b in boards] == [s for s in status if s.service_id == "sales"]


# -- actions ---------------------------------------------------------------------------------


async def test_withdraw_cancels_a_queued_task_with_a_supervisor_note(
        engine: Engine, clock: FakeClock) -> None:
    one = await sc.add_agent(engine, 1)
    task = await sc.new_task(engine, name="Ann")
    with pytest.raises(Refused) as refused:
        await engine.run(supervision.withdraw, board.Supervisor("other@example.com"), task.id)
    assert refused.value.code == "forbidden"
    await engine.run(supervision.withdraw, BOSS, task.id)
    done = await sc.load_task(engine, task.id)
    assert done.state is TaskState.CANCELLED
    [offer] = await sc.sessions_of(engine, task.id)
    assert (offer.agent_id, offer.result, offer.note) == (
        one, SessionResult.CANCELLED, "The task was withdrawn by a supervisor.")
    await engine.run(supervision.withdraw, BOSS, task.id)  # twice: nothing more
    acted = [e for e in await engine.read(events_of, task.id) if e.name == ev.SUPERVISOR_ACTED]
    assert [(e.data["action"], e.data["supervisor"], e.service_id) for e in acted] == [
        ("withdraw", "Boss@example.com", "sales")]
    with pytest.raises(NotFound):
        await engine.run(supervision.withdraw, BOSS, "no-such-task")


async def test_a_connected_task_cannot_be_withdrawn(engine: Engine) -> None:
    one = await sc.add_agent(engine, 1)
    task = await sc.new_task(engine)
    [offer] = await sc.ringing(engine, task.id)
    await engine.run(accept, offer.id, one)
    with pytest.raises(Stale, match="connected"):
        await engine.run(supervision.withdraw, BOSS, task.id)


async def test_offer_a_held_back_task_to_the_agent_who_declined_it(
        engine: Engine, clock: FakeClock) -> None:
    two = await sc.add_agent(engine, 2)
    await sc.advance(engine, clock, 1)
    one = await sc.add_agent(engine, 1)
    first = await sc.new_task(engine, name="Ann")  # to Agent 2, idle longest
    [offer] = await sc.ringing(engine, first.id)
    await engine.run(accept, offer.id, two)
    task = await sc.new_task(engine, name="Bob")
    [mine] = await sc.ringing(engine, task.id)
    await engine.run(decline, mine.id, one)  # held back: Agent 2 may take it when free
    assert (await sc.load_task(engine, task.id)).state is TaskState.QUEUED
    assert await sc.agent_state(engine, one) is AgentState.AVAILABLE

    with pytest.raises(Refused, match="Agent 2 cannot take this task now: they are busy"):
        await engine.run(supervision.offer_to, BOSS, task.id, two)
    with pytest.raises(NotFound):
        await engine.run(supervision.offer_to, BOSS, task.id, "user-9")
    with pytest.raises(Refused) as refused:
        await engine.run(supervision.offer_to, board.Supervisor("a1@example.com"), task.id,
                         one)
    assert refused.value.code == "forbidden"

    await engine.run(supervision.offer_to, BOSS, task.id, one)
    again = [s for s in await sc.ringing(engine, task.id)]
    assert [s.agent_id for s in again] == [one]
    assert await sc.agent_state(engine, one) is AgentState.RINGING
    with pytest.raises(Stale, match="being offered already"):
        await engine.run(supervision.offer_to, BOSS, task.id, one)


async def test_reset_rona_and_set_off_duty(engine: Engine, clock: FakeClock) -> None:
    one = await sc.add_agent(engine, 1)
    task = await sc.new_task(engine)
    await sc.advance(engine, clock, 60)  # no answer: RONA
    assert await sc.agent_state(engine, one) is AgentState.RONA
    with pytest.raises(Refused) as refused:
        await engine.run(supervision.reset_rona, BOSS, "billing", one)
    assert refused.value.code == "forbidden"
    await engine.run(supervision.reset_rona, BOSS, "sales", one)
    # Free again: the waiting task is offered to them at once.
    assert [s.agent_id for s in await sc.ringing(engine, task.id)] == [one]
    with pytest.raises(Stale, match="not in RONA"):
        await engine.run(supervision.reset_rona, BOSS, "sales", one)

    await engine.run(supervision.set_off_duty, BOSS, "sales", one)
    agent = await sc.load_agent(engine, one)
    assert agent.profile == "Off Duty"
    assert await sc.agent_state(engine, one) is AgentState.OFF_DUTY
    [offer] = [s for s in await sc.sessions_of(engine, task.id) if s.phase is Phase.ENDED
               and s.result is SessionResult.DECLINED]
    assert offer.note == "The agent switched to Off Duty."
    await engine.run(supervision.set_off_duty, BOSS, "sales", one)  # already: no change
    with pytest.raises(NotFound):
        await engine.run(supervision.set_off_duty, BOSS, "sales", "user-9")


async def test_a_live_only_read_leaves_the_figures_out(engine: Engine, clock: FakeClock) -> None:
    await scene(engine, clock)
    [sales] = await engine.read(board.boards, BOSS, DAY, figures_for=())
    assert sales.figures is None
    assert sales.picture.waiting == 2
