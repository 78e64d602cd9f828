"""The meaning both stores share, in the domain: the queue order, the idle order (and the
Cosmos DB store's one-string form of it) and the text My Sessions search looks in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.agent import Agent
from bot.domain.routing import idle_key, queue_key
from bot.domain.service import Modality
from bot.domain.session import Session
from bot.storage.codec import micros
from bot.storage.cosmos_repos import _idle_order

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

moments = st.integers(min_value=0, max_value=10**12).map(lambda us: T0 + timedelta(microseconds=us))
ids = st.text(alphabet="abc-1", min_size=1, max_size=4)


def test_the_queue_takes_higher_priority_first_then_the_longest_waiting_then_by_id() -> None:
    waiting = [(0, T0, "b"), (5, T0 + timedelta(seconds=9), "z"), (0, T0, "a"),
               (0, T0 - timedelta(seconds=1), "y")]
    order = sorted(waiting, key=lambda w: queue_key(*w))
    assert [task_id for _, _, task_id in order] == ["z", "y", "a", "b"]


@given(st.lists(st.tuples(st.integers(-3, 3), moments, ids), max_size=12))
def test_a_store_s_microseconds_order_the_queue_as_the_enqueue_times_do(
        waiting: list[tuple[int, datetime, str]]) -> None:
    by_time = sorted(waiting, key=lambda w: queue_key(*w))
    by_stamp = sorted(waiting, key=lambda w: queue_key(w[0], micros(w[1]), w[2]))
    assert [queue_key(*w) for w in by_time] == [queue_key(*w) for w in by_stamp]


@given(st.lists(st.tuples(ids, st.none() | moments), max_size=12, unique_by=lambda a: a[0]))
def test_the_cosmos_idle_string_sorts_as_the_idle_key(agents: list[tuple[str, datetime | None]],
                                                     ) -> None:
    roster = [Agent(id=agent_id, idle_since=since) for agent_id, since in agents]
    assert ([a.id for a in sorted(roster, key=_idle_order)]
            == [a.id for a in sorted(roster, key=idle_key)])


def test_my_sessions_search_looks_in_service_customer_and_tags_in_lower_case() -> None:
    session = Session(id="s1", task_id="t1", agent_id="a1", service_id="sales",
                      service_name="Sales EMEA", modality=Modality.IM, offered_at=T0,
                      queued_at=T0, ring_until=T0, customer_label="Jane DOE", tags=["VIP"])
    text = session.search_text()
    assert all(part in text for part in ("sales emea", "jane doe", "vip", "sales"))
    assert text == text.lower()
    session.customer_label = None
    session.tags = []
    assert "none" not in session.search_text()
