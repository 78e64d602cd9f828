"""Service configuration: distribution, after-call work, capacity, codes and context settings."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from bot.domain.webhooks.model import WebRequest


class Modality(StrEnum):
    IM = "im"
    EMAIL = "email"
    EXTERNAL = "external"


class DistributionMode(StrEnum):
    DIRECT = "direct"
    BROADCAST = "broadcast"


@dataclass(frozen=True)
class Distribution:
    mode: DistributionMode = DistributionMode.DIRECT
    broadcast_size: int = 10
    ring_timeout: timedelta = timedelta(seconds=30)
    rona_reset: timedelta = timedelta(minutes=10)
    persistent_rona: bool = False
    # A decline holds the agent back from the same task this long, while others may take it.
    redecline_after: timedelta = timedelta(minutes=2)
    max_queue_time: timedelta = timedelta(hours=1)
    priority: int = 0


@dataclass(frozen=True)
class AcwSettings:
    duration: timedelta = timedelta(seconds=20)
    allow_early_end: bool = True
    max_extension: timedelta = timedelta(minutes=1)

    @property
    def enabled(self) -> bool:
        return self.duration > timedelta(0)

    @property
    def extendable(self) -> bool:
        return self.max_extension > timedelta(0)


@dataclass(frozen=True)
class Codes:
    primary: tuple[str, ...] = ()
    secondary: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return bool(self.primary)


@dataclass(frozen=True)
class ContextSettings:
    url: str = ""
    store_data: bool = False


@dataclass(frozen=True)
class InteractSettings:
    allowed_origins: tuple[str, ...] = ()  # empty: only the app's own pages
    idle_timeout: timedelta = timedelta(minutes=10)  # 0 = never
    # HMAC-SHA256 secret the website signs its signed-in customers' identities with (from the
    # environment variable `identity_key` names); empty: no signed identities.
    identity_secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class ExternalSettings:
    max_open: int = 100  # fair use: live external tasks per service; 0 = no cap


SCOPES = ("tasks", "reporting", "privacy")
DEFAULT_SCOPES = ("tasks", "reporting")  # a key without `scopes` keeps the rights keys had


@dataclass(frozen=True)
class ApiKey:
    """A key of the HTTP APIs. Only the SHA-256 hex digest of the key is known.

    `scopes` say which APIs it opens: "tasks" (/api/v1/tasks, for its services), "reporting"
    (/api/v1/sessions and /events, for its services), "privacy" (/api/v1/privacy, for every
    service: a customer's request concerns all their data)."""

    name: str
    sha256: str
    services: tuple[str, ...] = ()
    scopes: tuple[str, ...] = DEFAULT_SCOPES

    def allows(self, service_id: str) -> bool:
        return service_id in self.services

    def may(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    modalities: tuple[Modality, ...] = (Modality.IM,)
    members: tuple[str, ...] = ()
    email: str = ""
    distribution: Distribution = field(default_factory=Distribution)
    acw: AcwSettings = field(default_factory=AcwSettings)
    capacity: dict[Modality, int] = field(
        default_factory=lambda: {m: 1 for m in Modality}
    )
    codes: Codes = field(default_factory=Codes)
    context: ContextSettings = field(default_factory=ContextSettings)
    interact: InteractSettings = field(default_factory=InteractSettings)
    external: ExternalSettings = field(default_factory=ExternalSettings)
    offline_message: str = "Sorry, no one could take your request in time. Please try again later."
    web_requests: tuple[WebRequest, ...] = ()  # [[service.web_request]] templates
    supervisors: tuple[str, ...] = ()  # UPNs or Entra object ids who see its board and act on it
    # The service level counts a task answered when an agent accepted it within this long.
    service_level: timedelta = timedelta(seconds=20)

    def capacity_for(self, modality: Modality) -> int:
        return self.capacity.get(modality, 1)

    def has_member(self, upn: str | None, object_id: str | None) -> bool:
        return _named(self.members, upn, object_id)

    def supervised_by(self, upn: str | None, object_id: str | None) -> bool:
        return _named(self.supervisors, upn, object_id)


def _named(names: tuple[str, ...], upn: str | None, object_id: str | None) -> bool:
    """Whether `names` (UPNs or object ids, any case) names this person."""
    keys = {n.lower() for n in names}
    return bool((upn and upn.lower() in keys) or (object_id and object_id.lower() in keys))


DEFAULT_PROFILES: tuple[tuple[str, bool], ...] = (("Duty", True), ("Off Duty", False))
DEFAULT_NAR_REASONS: tuple[str, ...] = ("Break", "Meeting", "Lunch", "Training", "Other")


@dataclass(frozen=True)
class Catalog:
    """Everything the services file declares, looked up by id."""

    services: dict[str, Service]
    profiles: tuple[tuple[str, bool], ...] = DEFAULT_PROFILES
    nar_reasons: tuple[str, ...] = DEFAULT_NAR_REASONS
    stale_session_after: timedelta = timedelta(hours=24)
    stale_sweep_every: timedelta = timedelta(hours=1)
    api_keys: tuple[ApiKey, ...] = ()

    def service(self, service_id: str) -> Service:
        return self.services[service_id]

    def memberships(self, upn: str | None, object_id: str | None) -> tuple[str, ...]:
        return tuple(s.id for s in self.services.values() if s.has_member(upn, object_id))

    def supervised(self, upn: str | None, object_id: str | None) -> tuple[str, ...]:
        """The services this person supervises, in file order."""
        return tuple(s.id for s in self.services.values() if s.supervised_by(upn, object_id))

    def api_key(self, digest: str) -> ApiKey | None:
        """The key with this SHA-256 hex digest; every key is compared, in constant time."""
        found = None
        for key in self.api_keys:
            if hmac.compare_digest(key.sha256, digest.lower()):
                found = key
        return found

    def email_service(self, address: str) -> Service | None:
        """The service that takes email tasks at this address (case-insensitive)."""
        wanted = address.strip().lower()
        for service in self.services.values():
            if service.email and service.email.lower() == wanted \
                    and Modality.EMAIL in service.modalities:
                return service
        return None

    def profile_on_duty(self, profile: str) -> bool | None:
        for name, on_duty in self.profiles:
            if name.lower() == profile.lower():
                return on_duty
        return None

    def profile_name(self, profile: str) -> str | None:
        for name, _ in self.profiles:
            if name.lower() == profile.lower():
                return name
        return None
