"""The task's state machine without storage: every legal state change, the illegal refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.errors import InvalidTransition, Stale
from bot.domain.service import Modality
from bot.domain.task import Task, TaskResult, TaskState

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def queued() -> Task:
    return Task(id="t1", service_id="sales", modality=Modality.IM, created_at=at(0),
                enqueued_at=at(0), call_flow=["sales"])


def ringing() -> Task:
    task = queued()
    task.ring("s1", "a1")
    task.ring("s2", "a2")
    return task


def connected() -> Task:
    task = ringing()
    task.connect("s1", "a1", at(10))
    return task


def wrapup() -> Task:
    task = connected()
    task.start_wrapup()
    return task


def done() -> Task:
    task = connected()
    task.finish(TaskState.DONE, TaskResult.HANDLED, at(100))
    return task


ALL = {"queued": queued, "ringing": ringing, "connected": connected, "wrapup": wrapup,
       "done": done}


def others(*allowed: str) -> list[str]:
    return [name for name in ALL if name not in allowed]


def test_offers_ring_the_task_and_remember_who_was_tried() -> None:
    task = ringing()
    task.ring("s3", "a1")  # offered again (broadcast round): tried once
    assert task.state is TaskState.RINGING
    assert task.ringing == ["s1", "s2", "s3"] and task.tried == ["a1", "a2"]


@pytest.mark.parametrize("start", others("queued", "ringing"))
def test_only_a_queued_or_ringing_task_rings(start: str) -> None:
    task = ALL[start]()
    with pytest.raises(InvalidTransition):
        task.ring("s9", "a9")
    assert "s9" not in task.ringing


def test_accept_connects_and_hands_back_the_offers_to_rescind() -> None:
    task = ringing()
    assert task.connect("s2", "a2", at(10)) == ["s1"]
    assert task.state is TaskState.CONNECTED and task.ringing == []
    assert (task.agent_id, task.session_id, task.connected_at) == ("a2", "s2", at(10))


@pytest.mark.parametrize("start", [*others("ringing"), "ringing"])
def test_a_late_or_foreign_accept_is_stale(start: str) -> None:
    task = ALL[start]()
    before = (task.state, list(task.ringing), task.session_id)
    with pytest.raises(Stale, match="already taken or has ended"):
        task.connect("s-unknown", "a9", at(20))
    assert (task.state, task.ringing, task.session_id) == before


def test_a_second_accept_loses() -> None:
    task = connected()
    with pytest.raises(Stale):
        task.connect("s2", "a2", at(11))
    assert task.session_id == "s1"


def test_an_ended_offer_leaves_the_task_ringing_until_none_is_left() -> None:
    task = ringing()
    task.drop_offer("s1")
    task.drop_offer("s1")  # twice: nothing more
    assert not task.release() and task.state is TaskState.RINGING
    task.drop_offer("s2")
    assert task.release() and task.state is TaskState.QUEUED
    assert task.tried == ["a1", "a2"]  # since enqueue


@pytest.mark.parametrize("start", others("ringing"))
def test_release_moves_only_a_ringing_task(start: str) -> None:
    task = ALL[start]()
    state = task.state
    assert not task.release() and task.state is state


def test_declines_are_remembered_since_enqueue() -> None:
    task = ringing()
    task.note_decline("a1", at(3))
    assert task.declined == {"a1": at(3)}


def test_a_connected_task_goes_to_wrapup() -> None:
    assert wrapup().state is TaskState.WRAPUP
    for start in others("connected"):
        with pytest.raises(InvalidTransition):
            ALL[start]().start_wrapup()


def test_transfer_queues_in_the_target_afresh() -> None:
    task = connected()
    task.note_decline("a3", at(5))
    task.transfer("support", at(50))
    assert (task.state, task.service_id, task.enqueued_at) == (TaskState.QUEUED, "support", at(50))
    assert task.call_flow == ["sales", "support"]
    assert (task.ringing, task.tried, task.declined) == ([], [], {})
    assert task.agent_id is task.session_id is task.connected_at is None


def test_a_failed_chat_requeues_where_it_was_not_trying_that_agent_again() -> None:
    task = connected()
    task.requeue("sales", task.enqueued_at, tried=["a1"])
    assert (task.state, task.enqueued_at, task.tried) == (TaskState.QUEUED, at(0), ["a1"])
    assert task.call_flow == ["sales"] and task.session_id is None


@pytest.mark.parametrize("start", others("connected"))
def test_only_a_connected_task_requeues(start: str) -> None:
    task = ALL[start]()
    with pytest.raises(InvalidTransition):
        task.transfer("support", at(50))
    assert task.service_id == "sales" and task.call_flow == ["sales"]


@pytest.mark.parametrize(("start", "state", "result"), [
    ("queued", TaskState.CANCELLED, TaskResult.CANCELLED),
    ("ringing", TaskState.EXPIRED, TaskResult.NOT_HANDLED),
    ("connected", TaskState.DONE, TaskResult.HANDLED),
    ("wrapup", TaskState.DONE, TaskResult.HANDLED),
])
def test_a_live_or_wrapping_task_finishes(start: str, state: TaskState,
                                          result: TaskResult) -> None:
    task = ALL[start]()
    task.finish(state, result, at(100))
    assert (task.state, task.result, task.ended_at, task.ringing) == (state, result, at(100), [])
    assert task.state.finished and not task.state.live


def test_a_finished_task_does_not_finish_again() -> None:
    task = done()
    with pytest.raises(InvalidTransition):
        task.finish(TaskState.CANCELLED, TaskResult.CANCELLED, at(200))
    assert (task.state, task.ended_at) == (TaskState.DONE, at(100))


@pytest.mark.parametrize("state", [TaskState.QUEUED, TaskState.WRAPUP])
def test_finish_needs_a_final_state(state: TaskState) -> None:
    with pytest.raises(InvalidTransition):
        connected().finish(state, TaskResult.HANDLED, at(100))
