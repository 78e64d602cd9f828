"""The availability index in the domain: `availability` says what `can_take` says, time aside,
and `candidates_needed` is enough for `pick_agents` to choose as over every member."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.agent import Agent, Availability, Engagement, availability, can_take
from bot.domain.routing import candidates_needed, idle_key, pick_agents
from bot.domain.service import Catalog, Distribution, DistributionMode, Modality, Service
from bot.domain.task import Task

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PROFILES = (("Duty", True), ("Off Duty", False), ("Lunch", False), ("Backoffice", True))


def make_catalog(**capacities: dict[Modality, int]) -> Catalog:
    services = {sid: Service(id=sid, name=sid.title(), capacity=dict(cap))
                for sid, cap in capacities.items()}
    return Catalog(services=services, profiles=PROFILES)


CATALOG = make_catalog(sales={Modality.IM: 2, Modality.EMAIL: 1, Modality.EXTERNAL: 3},
                       support={Modality.IM: 1, Modality.EMAIL: 2})


def engaged(service_id: str, modality: Modality, phase: str, n: int = 0) -> Engagement:
    return Engagement(f"s-{service_id}-{modality}-{phase}-{n}", f"t{n}", service_id, modality,
                      phase)


def agent(**fields: object) -> Agent:
    base = Agent(id="a1", registered=True, services=["sales", "support"])
    return replace(base, **fields)  # type: ignore[arg-type]


def slots(a: Agent, catalog: Catalog = CATALOG) -> set[tuple[str, Modality]]:
    return set(availability(a, catalog).slots)


EVERY = {(s, m) for s in ("sales", "support") for m in Modality}


def test_an_available_agent_may_take_every_modality_of_every_service() -> None:
    assert slots(agent()) == EVERY
    assert availability(agent(), CATALOG) == Availability(frozenset(EVERY), None)


def test_nothing_when_unregistered_off_duty_ringing_or_in_after_call_work() -> None:
    assert slots(agent(registered=False)) == set()
    assert slots(agent(profile="Off Duty")) == set()
    assert slots(agent(profile="lunch")) == set()  # any off-duty profile, any case
    assert slots(agent(engagements=[engaged("sales", Modality.IM, "ringing")])) == set()
    assert slots(agent(engagements=[engaged("support", Modality.EMAIL, "acw")])) == set()
    assert availability(agent(profile="Off Duty"), CATALOG) == Availability()


def test_an_unknown_profile_counts_as_on_duty_as_derive_state_has_it() -> None:
    assert slots(agent(profile="Something else")) == EVERY
    assert slots(agent(profile="Backoffice")) == EVERY


def test_connected_work_takes_the_modality_off_where_the_service_capacity_is_reached() -> None:
    one_im = agent(engagements=[engaged("sales", Modality.IM, "connected")])
    # sales allows two IM sessions, support one: support's IM is full, which does not make the
    # agent busy (only a modality at the capacity of the engagement's own service does).
    assert slots(one_im) == EVERY - {("support", Modality.IM)}
    support_im = agent(engagements=[engaged("support", Modality.IM, "connected")])
    assert slots(support_im) == set()  # at support's IM capacity: busy everywhere


def test_slots_only_for_services_of_the_catalog_the_agent_belongs_to() -> None:
    assert {s for s, _ in slots(agent(services=["sales", "gone"]))} == {"sales"}
    assert slots(agent(services=[])) == set()


def test_rona_is_the_time_part() -> None:
    rona = agent(rona_until=NOW + timedelta(minutes=5))
    found = availability(rona, CATALOG)
    assert found.slots == frozenset(EVERY) and found.ready_at == NOW + timedelta(minutes=5)
    assert not found.allows("sales", Modality.IM, NOW)
    assert not found.allows("sales", Modality.IM, NOW + timedelta(minutes=5, microseconds=-1))
    assert found.allows("sales", Modality.IM, NOW + timedelta(minutes=5))
    assert not found.allows("elsewhere", Modality.IM, NOW + timedelta(hours=1))


# -- the mirror, over random agents and catalogs ------------------------------------------------

SERVICE_IDS = ("sales", "support", "it")
capacities = st.fixed_dictionaries({m: st.integers(0, 3) for m in Modality})
catalogs = st.builds(
    lambda caps, profiles: Catalog(
        services={sid: Service(id=sid, name=sid, capacity=cap) for sid, cap in caps.items()},
        profiles=profiles),
    st.dictionaries(st.sampled_from(SERVICE_IDS), capacities, min_size=1),
    st.sampled_from([PROFILES, (("Duty", True), ("Off Duty", False)),
                     (("Duty", False), ("Off Duty", True))]))
engagements = st.builds(
    lambda n, sid, m, phase: engaged(sid, m, phase, n),
    st.integers(0, 100), st.sampled_from(SERVICE_IDS), st.sampled_from(list(Modality)),
    st.sampled_from(["ringing", "connected", "connected", "acw", "other"]))
moments = st.integers(-600, 600).map(lambda s: NOW + timedelta(seconds=s))
agents = st.builds(
    lambda registered, services, profile, rona, work: Agent(
        id="a1", registered=registered, services=services, profile=profile, rona_until=rona,
        engagements=work),
    st.booleans(), st.lists(st.sampled_from(SERVICE_IDS), max_size=3, unique=True),
    st.sampled_from(["Duty", "Off Duty", "Lunch", "duty", "Unknown"]),
    st.none() | moments, st.lists(engagements, max_size=4))


@settings(max_examples=600, deadline=None)
@given(agents, catalogs, moments)
def test_availability_allows_exactly_what_can_take_allows(a: Agent, catalog: Catalog,
                                                          now: datetime) -> None:
    found = availability(a, catalog)
    for service_id in catalog.services:
        for modality in Modality:
            assert found.allows(service_id, modality, now) == can_take(
                a, service_id, modality, catalog, now), (service_id, modality)


# -- how many candidates pick_agents needs --------------------------------------------------------

def _task(tried: list[str], service_id: str = "sales") -> Task:
    return Task(id="t1", service_id=service_id, modality=Modality.IM, created_at=NOW,
                enqueued_at=NOW, tried=list(tried))


def _idle_agents(count: int) -> list[Agent]:
    return [Agent(id=f"a{n:02d}", registered=True, services=["sales"],
                  idle_since=None if n % 7 == 0 else NOW - timedelta(seconds=(n * 37) % 11))
            for n in range(count)]


def test_candidates_needed_is_the_ring_size_plus_the_tried() -> None:
    direct = make_catalog(sales={})
    broadcast = Catalog(services={"sales": Service(
        id="sales", name="Sales",
        distribution=Distribution(mode=DistributionMode.BROADCAST, broadcast_size=4))})
    assert candidates_needed(_task([]), direct) == 1
    assert candidates_needed(_task(["a1", "a2"]), direct) == 3
    assert candidates_needed(_task(["a1"]), broadcast) == 5


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 12), st.integers(0, 4), st.data())
def test_pick_agents_over_the_first_candidates_chooses_as_over_everyone(
        count: int, size: int, data: st.DataObject) -> None:
    members = _idle_agents(count)
    mode = DistributionMode.BROADCAST if size else DistributionMode.DIRECT
    catalog = Catalog(services={"sales": Service(
        id="sales", name="Sales", distribution=Distribution(mode=mode, broadcast_size=size))})
    tried = data.draw(st.lists(st.sampled_from([a.id for a in members] + ["gone"]),
                               unique=True) if members else st.just([]))
    task = _task(tried)
    first = sorted(members, key=idle_key)[:candidates_needed(task, catalog)]
    assert [a.id for a in pick_agents(task, first, catalog, NOW)] == [
        a.id for a in pick_agents(task, members, catalog, NOW)]
