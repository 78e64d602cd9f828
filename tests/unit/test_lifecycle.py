"""Cancel, expiry, terminate, after-call work, wrap-up, transfer, stale sweep, duty and NAR."""

from __future__ import annotations

import pytest

from bot.bootstrap import build_engine
from bot.domain.agent import AgentState
from bot.domain.errors import Invalid, Refused, Stale
from bot.domain.session import Phase, SessionResult
from bot.domain.task import TaskResult, TaskState
from bot.services import agents as agent_cases
from bot.services.engine import Engine
from bot.services.lifecycle import (
    cancel_task,
    end_acw,
    extend_acw,
    terminate,
    transfer,
)
from bot.services.offers import accept
from bot.services.wrapup import save_wrapup, suggest_tags
from bot.storage.sqlite import SqliteStore
from tests.builders import catalog
from tests.fakes import FakeClock
from tests.scenario import (
    add_agent,
    advance,
    agent_state,
    load_agent,
    load_task,
    new_task,
    ringing,
    sessions_of,
    task_of_session,
)


async def connected(engine: Engine, agent: str, name: str = "Jane Doe") -> str:
    task = await new_task(engine, name=name)
    [offer] = await ringing(engine, task.id)
    await engine.run(accept, offer.id, agent)
    return offer.id


async def in_acw(engine: Engine) -> tuple[str, str]:
    """Agent 1 ends a chat it took: (the agent, the session in after-call work)."""
    agent = await add_agent(engine, 1)
    session_id = await connected(engine, agent)
    await engine.run(terminate, session_id, agent_id=agent)
    return agent, session_id


@pytest.fixture
def coded(store: SqliteStore, clock: FakeClock) -> Engine:
    return build_engine(
        store,
        clock,
        catalog(
            {"id": "sales", "codes": {"primary": ["Sale", "No sale"], "secondary": ["Follow-up"]}},
            {"id": "support"},
        ),
    )


async def test_customer_cancel_before_accept(engine: Engine) -> None:
    agent = await add_agent(engine, 1)
    task = await new_task(engine)
    await engine.run(cancel_task, task.id)
    stored = await load_task(engine, task.id)
    assert (stored.state, stored.result) == (TaskState.CANCELLED, TaskResult.CANCELLED)
    [session] = await sessions_of(engine, task.id)
    assert session.result is SessionResult.CANCELLED
    assert await agent_state(engine, agent) is AgentState.AVAILABLE


async def test_max_queue_time_expires_the_task(engine: Engine, clock: FakeClock) -> None:
    task = await new_task(engine)
    await advance(engine, clock, 3599)
    assert (await load_task(engine, task.id)).state is TaskState.QUEUED
    await advance(engine, clock, 1)
    stored = await load_task(engine, task.id)
    assert (stored.state, stored.result) == (TaskState.EXPIRED, TaskResult.NOT_HANDLED)


async def test_terminate_starts_acw_then_the_agent_is_available(
    engine: Engine, clock: FakeClock
) -> None:
    agent = await add_agent(engine, 1)
    session_id = await connected(engine, agent)
    assert await agent_state(engine, agent) is AgentState.BUSY
    await engine.run(terminate, session_id, agent_id=agent)
    assert await agent_state(engine, agent) is AgentState.ACW
    waiting = await new_task(engine, name="Next")
    assert await ringing(engine, waiting.id) == []  # nothing is offered during ACW
    await advance(engine, clock, 20)
    assert [s.agent_id for s in await ringing(engine, waiting.id)] == [agent]


async def test_acw_extension_adds_to_the_time_left(store: SqliteStore, clock: FakeClock) -> None:
    engine = build_engine(store, clock, catalog({"id": "sales",
                                           "acw": {"duration": "10m", "max_extension": "1m"}}))
    agent, session_id = await in_acw(engine)
    await advance(engine, clock, 5 * 60)  # 5 min of the 10 min left
    extended = await engine.run(extend_acw, session_id, agent_id=agent)
    assert extended.acw_until is not None
    assert (extended.acw_until - clock.now()).total_seconds() == 6 * 60  # 5 min + 1 min
    await advance(engine, clock, 6 * 60 - 1)
    assert await agent_state(engine, agent) is AgentState.ACW
    await advance(engine, clock, 1)
    assert await agent_state(engine, agent) is AgentState.AVAILABLE
    with pytest.raises(Stale):
        await engine.run(extend_acw, session_id, agent_id=agent)


async def test_acw_extends_only_once(engine: Engine) -> None:
    agent, session_id = await in_acw(engine)
    await engine.run(extend_acw, session_id, agent_id=agent)
    with pytest.raises(Refused, match="already extended"):
        await engine.run(extend_acw, session_id, agent_id=agent)


async def test_acw_can_end_early_and_only_once(engine: Engine) -> None:
    agent, session_id = await in_acw(engine)
    await engine.run(end_acw, session_id, agent_id=agent)
    assert await agent_state(engine, agent) is AgentState.AVAILABLE
    with pytest.raises(Stale):
        await engine.run(end_acw, session_id, agent_id=agent)


async def test_no_acw_when_duration_is_zero(store: SqliteStore, clock: FakeClock) -> None:
    engine = build_engine(store, clock, catalog({"id": "sales", "acw": {"duration": "0s"}}))
    agent = await add_agent(engine, 1)
    session_id = await connected(engine, agent)
    ended = await engine.run(terminate, session_id, agent_id=agent)
    assert await agent_state(engine, agent) is AgentState.AVAILABLE
    stored = await load_task(engine, ended.task_id)
    assert (stored.state, stored.result) == (TaskState.DONE, TaskResult.HANDLED)


async def test_save_without_a_required_code_is_refused(coded: Engine) -> None:
    agent = await add_agent(coded, 1)
    session_id = await connected(coded, agent)
    with pytest.raises(Invalid, match="primary code") as refused:
        await coded.run(save_wrapup, session_id, agent, primary=None, secondary=None, tags=[])
    assert refused.value.field == "primary_code"
    with pytest.raises(Invalid):
        await coded.run(save_wrapup, session_id, agent, primary="Nope", secondary=None, tags=[])


async def test_save_exactly_once_and_tags_are_suggested(coded: Engine) -> None:
    agent = await add_agent(coded, 1)
    session_id = await connected(coded, agent)
    await coded.run(terminate, session_id, agent_id=agent)
    saved = await coded.run(
        save_wrapup,
        session_id,
        agent,
        primary="Sale",
        secondary="Follow-up",
        tags=[" VIP ", "vip", "Renewal"],
    )
    assert saved.tags == ["VIP", "Renewal"] and saved.saved_at is not None
    with pytest.raises(Refused, match="already saved"):
        await coded.run(save_wrapup, session_id, agent, primary="Sale", secondary=None, tags=[])
    assert await coded.run(suggest_tags, "sales", "ren") == ["Renewal"]
    assert await coded.run(suggest_tags, "support", "") == []


async def test_transfer_requeues_and_keeps_the_call_flow(coded: Engine) -> None:
    first = await add_agent(coded, 1)
    second = await add_agent(coded, 2)
    session_id = await connected(coded, first)
    task = await coded.run(transfer, session_id, "support", agent_id=first)
    stored = await load_task(coded, task.id)
    assert stored.call_flow == ["sales", "support"]
    assert stored.service_id == "support" and stored.state is TaskState.RINGING
    assert [s.agent_id for s in await ringing(coded, task.id)] == [second]
    assert await agent_state(coded, first) is AgentState.ACW


async def test_stale_sessions_are_swept(engine: Engine, clock: FakeClock) -> None:
    from bot.services.lifecycle import stale_sweep

    agent = await add_agent(engine, 1)
    session_id = await connected(engine, agent)
    task_id = await task_of_session(engine, session_id)
    await engine.run(stale_sweep)  # arms the hourly sweep
    await advance(engine, clock, 23 * 3600)
    assert await agent_state(engine, agent) is AgentState.BUSY
    await advance(engine, clock, 3600)  # 24 h connected: the next hourly sweep ends it
    await advance(engine, clock, 3600)
    [session] = [s for s in await sessions_of(engine, task_id) if s.id == session_id]
    assert session.phase in (Phase.ACW, Phase.ENDED)
    assert "too long" in session.note


async def test_duty_profiles_and_not_available_reasons(engine: Engine, clock: FakeClock) -> None:
    agent = await add_agent(engine, 1)
    await engine.run(agent_cases.set_duty, agent, "off duty")
    assert await agent_state(engine, agent) is AgentState.OFF_DUTY
    clock.advance(60)
    await engine.run(agent_cases.set_duty, agent, "Duty")
    await new_task(engine)
    await advance(engine, clock, 30)  # RONA: a second request
    pending = (await load_agent(engine, agent)).pending_nar(clock.now())
    assert [r.trigger for r in pending] == ["rona", "profile:Off Duty"]  # most recent first
    await engine.run(agent_cases.fill_nar, agent, pending[0].id, "Break")
    with pytest.raises(Invalid):
        await engine.run(agent_cases.fill_nar, agent, pending[1].id, "Sleeping")
    clock.advance(7 * 86400)
    assert (await load_agent(engine, agent)).pending_nar(clock.now()) == []
    with pytest.raises(Invalid):
        await engine.run(agent_cases.set_duty, agent, "Holiday")
