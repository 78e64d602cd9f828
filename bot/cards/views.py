"""View models: the typed, already-decided data each card builder renders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# The cards name the domain's own enums (the domain is plain data with no I/O).
from bot.domain.agent import AgentState as AgentState
from bot.domain.service import Modality as Modality
from bot.domain.session import Phase as Phase
from bot.domain.session import SessionResult as SessionResult


@dataclass(frozen=True)
class Choice:
    """One entry of a pick list: `value` is sent back, `title` is shown."""

    value: str
    title: str


@dataclass(frozen=True)
class InfoView:
    title: str
    text: str


@dataclass(frozen=True)
class WelcomeView:
    app_name: str
    registered: bool


@dataclass(frozen=True)
class HelpView:
    app_name: str


@dataclass(frozen=True)
class OpenSession:
    session_id: str
    service: str
    customer: str | None
    result: SessionResult
    phase: Phase = Phase.ENDED


@dataclass(frozen=True)
class ServiceDuty:
    """One of the agent's services and whether they take its tasks now."""

    service_id: str
    name: str
    on: bool = True


@dataclass(frozen=True)
class StatusView:
    agent_name: str
    state: AgentState
    duty_profile: str
    not_available_reason: str | None = None
    other_profiles: tuple[str, ...] = ()
    rona: bool = False
    rona_session_id: str = ""
    open_sessions: tuple[OpenSession, ...] = ()
    pending_nar: int = 0
    services: tuple[ServiceDuty, ...] = ()


@dataclass(frozen=True)
class ImDetails:
    first_message: str


@dataclass(frozen=True)
class EmailDetails:
    sender: str
    subject: str
    preview: str
    """Plain text, already sanitized by the email channel."""
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExternalDetails:
    title: str
    description: str = ""
    due: datetime | None = None
    link: str | None = None


@dataclass(frozen=True)
class InvitationView:
    session_id: str
    service: str
    customer: str | None
    """Customer label: display name, "Visitor N", or None when unknown."""
    details: ImDetails | EmailDetails | ExternalDetails
    ring_seconds: float = 30
    waited_seconds: float = 0
    call_flow: tuple[str, ...] = ()
    context_url: str | None = None
    customer_unverified: bool = False  # the name is only what the customer typed
    customer_fields: tuple[tuple[str, str], ...] = ()
    """Customer details and custom parameters (name, value), shown as facts."""

    @property
    def modality(self) -> Modality:
        if isinstance(self.details, ImDetails):
            return Modality.IM
        if isinstance(self.details, EmailDetails):
            return Modality.EMAIL
        return Modality.EXTERNAL


@dataclass(frozen=True)
class SessionHeader:
    """What every card about one session shows on top (customer None → "Not available")."""

    session_id: str
    service: str
    customer: str | None
    modality: Modality
    customer_unverified: bool = False  # the name is only what the customer typed


@dataclass(frozen=True)
class AcceptedView:
    header: SessionHeader
    chat_url: str | None = None
    email_subject: str | None = None
    email_body: str | None = None
    """Full plain text of an email task, shown on the accepted card."""
    transfer_targets: tuple[Choice, ...] = ()
    email_sender: str | None = None
    """An email task's sender ("Name <address>"); with it the card offers Reply."""
    email_attachments: tuple[str, ...] = ()
    email_others: tuple[str, ...] = ()
    """Who else Reply all reaches (To and Cc less the service); Reply all only with some."""
    external: ExternalDetails | None = None
    """An external task's title, description, due date and link, kept after Accept."""
    error: str | None = None
    """Why the last button did nothing (a reply without text, replies switched off)."""
    context_url: str | None = None
    customer_fields: tuple[tuple[str, str], ...] = ()
    wrapup: WrapUpView | None = None
    """The codes and tags form (shown behind a button), None once saved or without one."""
    saved: ConcludedView | None = None
    """What a save during the session kept."""


@dataclass(frozen=True)
class OutcomeView:
    """Declined, missed, cancelled, taken, expired, failed, stale and terminated cards."""

    header: SessionHeader
    reason: str | None = None
    rona_set: bool = False
    """The agent is flagged RONA now: the card offers Reset RONA."""


@dataclass(frozen=True)
class Timings:
    """Durations in seconds; None when the phase did not happen."""

    ring_seconds: float | None = None
    queue_seconds: float | None = None
    connected_seconds: float | None = None
    acw_seconds: float | None = None


@dataclass(frozen=True)
class WrapUpView:
    header: SessionHeader
    result: SessionResult
    started_at: datetime
    timings: Timings = Timings()
    primary_codes: tuple[Choice, ...] = ()
    secondary_codes: tuple[Choice, ...] = ()
    codes_required: bool = False
    primary_code: str | None = None
    secondary_code: str | None = None
    tag_suggestions: tuple[str, ...] = ()
    """Tags already used in the service (Teams shows at most 15); typeahead fills in more."""
    tags: tuple[str, ...] = ()
    """Tags already on the session, pre-selected. Tags never contain commas."""
    error: str | None = None
    acw_until: datetime | None = None
    can_extend_acw: bool = False
    can_end_acw: bool = False
    context_url: str | None = None


@dataclass(frozen=True)
class ConcludedView:
    header: SessionHeader
    result: SessionResult
    started_at: datetime
    saved_at: datetime
    timings: Timings = Timings()
    primary_code: str | None = None
    secondary_code: str | None = None
    tags: tuple[str, ...] = ()
    error: str | None = None
    acw_until: datetime | None = None
    """While after-call work runs (the wrap-up was saved before it ended)."""
    can_extend_acw: bool = False
    can_end_acw: bool = False
    context_url: str | None = None


@dataclass(frozen=True)
class SessionEntry:
    session_id: str
    result: SessionResult
    service: str
    customer: str | None
    started_at: datetime
    is_open: bool = False
    modality: Modality = Modality.IM
    phase: Phase = Phase.ENDED
    timings: Timings = Timings()


@dataclass(frozen=True)
class SessionFilters:
    """What My Sessions is narrowed to; the values are those of `sessions.FILTER_CHOICES`."""

    query: str = ""
    result: str = ""
    modality: str = ""
    period: str = ""


@dataclass(frozen=True)
class SessionsView:
    entries: tuple[SessionEntry, ...]
    page: int = 0
    has_previous: bool = False
    has_next: bool = False
    query: str = ""
    filters: SessionFilters | None = None


@dataclass(frozen=True)
class SessionDetailView:
    """One My Sessions entry opened: everything the agent may still see of it."""

    entry: SessionEntry
    call_flow: tuple[str, ...] = ()
    primary_code: str | None = None
    secondary_code: str | None = None
    tags: tuple[str, ...] = ()
    saved_at: datetime | None = None
    email_subject: str | None = None
    context_url: str | None = None
    customer_fields: tuple[tuple[str, str], ...] = ()
    """Customer details and custom parameters, when the service stores context."""


@dataclass(frozen=True)
class NarRequest:
    request_id: str
    created_at: datetime


@dataclass(frozen=True)
class NarView:
    requests: tuple[NarRequest, ...]
    reasons: tuple[Choice, ...]
    error: str | None = None


@dataclass(frozen=True)
class TranscriptLine:
    sender: str
    text: str
    at: datetime


@dataclass(frozen=True)
class ChatHeaderView:
    session_id: str
    topic: str
    customer_name: str | None = None
    customer_email: str | None = None
    customer_phone: str | None = None
    context_url: str | None = None
    transcript: tuple[TranscriptLine, ...] = ()
    live: bool = True
    """The conversation still runs: Terminate is offered."""
    wrapup: WrapUpView | None = None
    """The codes and tags form (behind a button), None once saved or concluded."""
    saved: ConcludedView | None = None
    error: str | None = None
    """Why the last button did nothing (a second save)."""
