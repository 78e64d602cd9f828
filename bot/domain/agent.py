"""An agent: registration, duty profile, RONA flag, workload, and the state derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.service import Catalog, Modality

NAR_LIFETIME = timedelta(days=7)
OFF_DUTY_PROFILE = "Off Duty"


class AgentState(StrEnum):
    UNREGISTERED = "unregistered"
    OFF_DUTY = "off_duty"
    NOT_AVAILABLE = "not_available"
    RONA = "rona"
    RINGING = "ringing"
    BUSY = "busy"
    ACW = "acw"
    AVAILABLE = "available"


@dataclass
class Engagement:
    """One piece of the agent's current workload; the row the capacity check reads."""

    session_id: str
    task_id: str
    service_id: str
    modality: Modality
    phase: str  # "ringing" | "connected" | "acw"


@dataclass
class NarRequest:
    id: str
    created_at: datetime
    trigger: str  # "rona" | "profile:<name>"
    reason: str | None = None
    filled_at: datetime | None = None


@dataclass
class Agent:
    id: str  # the Teams user id the bot sees
    name: str = ""
    upn: str | None = None
    object_id: str | None = None
    registered: bool = False
    services: list[str] = field(default_factory=list)
    # Services the agent switched their responsibility off for: no offers from them.
    paused_services: list[str] = field(default_factory=list)
    profile: str = "Duty"
    rona_until: datetime | None = None
    rona_session: str | None = None  # the session whose card offers Reset RONA
    idle_since: datetime | None = None
    state_since: datetime | None = None  # when the derived state last changed (the board shows it)
    engagements: list[Engagement] = field(default_factory=list)
    nar_requests: list[NarRequest] = field(default_factory=list)
    # Opaque to the domain: what the Teams layer needs to reach the agent proactively.
    conversation: dict[str, Any] | None = None
    version: int = 0

    def engagement(self, session_id: str) -> Engagement | None:
        return next((e for e in self.engagements if e.session_id == session_id), None)

    def drop_engagement(self, session_id: str) -> None:
        self.engagements = [e for e in self.engagements if e.session_id != session_id]

    def is_rona(self, now: datetime) -> bool:
        return self.rona_until is not None and self.rona_until > now

    def pending_nar(self, now: datetime) -> list[NarRequest]:
        """Unanswered not-available reason requests, most recent first; older than 7 days drop."""
        pending = [
            r for r in self.nar_requests
            if r.reason is None and now - r.created_at < NAR_LIFETIME
        ]
        return sorted(pending, key=lambda r: r.created_at, reverse=True)


def derive_state(agent: Agent, catalog: Catalog, now: datetime) -> AgentState:
    """The one agent state the routing and the cards show, computed, never stored."""
    if not agent.registered:
        return AgentState.UNREGISTERED
    on_duty = catalog.profile_on_duty(agent.profile)
    if on_duty is False:
        if agent.profile.lower() == OFF_DUTY_PROFILE.lower():
            return AgentState.OFF_DUTY
        return AgentState.NOT_AVAILABLE
    if agent.is_rona(now):
        return AgentState.RONA
    phases = {e.phase for e in agent.engagements}
    if "acw" in phases:
        return AgentState.ACW
    if "ringing" in phases:
        return AgentState.RINGING
    if _at_capacity(agent, catalog):
        return AgentState.BUSY
    return AgentState.AVAILABLE


def connected(agent: Agent, modality: Modality) -> int:
    """How many tasks of this modality the agent is connected to now."""
    return sum(1 for e in agent.engagements if e.phase == "connected" and e.modality == modality)


def _at_capacity(agent: Agent, catalog: Catalog) -> bool:
    for engagement in agent.engagements:
        if engagement.phase != "connected":
            continue
        service = catalog.services.get(engagement.service_id)
        limit = service.capacity_for(engagement.modality) if service else 1
        if connected(agent, engagement.modality) >= limit:
            return True
    return False


@dataclass(frozen=True)
class Availability:
    """Where an agent may be offered tasks, as the availability index keeps it.

    `slots` are the (service id, modality) pairs `can_take` allows at any time the agent is not
    in RONA; `ready_at` is when a RONA runs out (None: no RONA): offerable from then on.
    """

    slots: frozenset[tuple[str, Modality]] = frozenset()
    ready_at: datetime | None = None

    def allows(self, service_id: str, modality: Modality, now: datetime) -> bool:
        return (service_id, modality) in self.slots and (
            self.ready_at is None or self.ready_at <= now)


def availability(agent: Agent, catalog: Catalog) -> Availability:
    """What `can_take` says of the agent for every service of the catalog, time aside.

    For every service s of the catalog, modality m and moment now:
    ``can_take(agent, s, m, catalog, now) == availability(agent, catalog).allows(s, m, now)``.
    It mirrors `derive_state` (registered, profile not off duty, no ringing or after-call work,
    not busy) and `can_take` (a member responsible for the service, under its capacity).
    """
    if not agent.registered or catalog.profile_on_duty(agent.profile) is False:
        return Availability()
    if any(e.phase in ("acw", "ringing") for e in agent.engagements):
        return Availability()
    if _at_capacity(agent, catalog):
        return Availability()
    slots: set[tuple[str, Modality]] = set()
    for service_id in agent.services:
        service = catalog.services.get(service_id)
        if service is None or service_id in agent.paused_services:
            continue
        for modality in Modality:
            if connected(agent, modality) < service.capacity_for(modality):
                slots.add((service_id, modality))
    if not slots:
        return Availability()
    return Availability(frozenset(slots), agent.rona_until)


def can_take(agent: Agent, service_id: str, modality: Modality, catalog: Catalog,
             now: datetime) -> bool:
    """Whether the service may offer the agent a task of this modality right now."""
    if service_id not in agent.services or service_id in agent.paused_services:
        return False
    if derive_state(agent, catalog, now) is not AgentState.AVAILABLE:
        return False
    limit = catalog.service(service_id).capacity_for(modality)
    return connected(agent, modality) < limit
