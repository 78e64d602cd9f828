"""One instance of every card builder and flag combination, in normal, hostile or huge form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bot.cards import (
    accepted_card,
    cancelled_card,
    chat_header_card,
    concluded_card,
    declined_card,
    expired_card,
    failed_card,
    help_card,
    info_card,
    invitation_card,
    missed_card,
    nar_card,
    session_detail_card,
    sessions_card,
    stale_card,
    status_card,
    taken_card,
    terminated_card,
    welcome_card,
    wrapup_card,
)
from bot.cards.views import (
    AcceptedView,
    AgentState,
    ChatHeaderView,
    Choice,
    ConcludedView,
    EmailDetails,
    ExternalDetails,
    HelpView,
    ImDetails,
    InfoView,
    InvitationView,
    Modality,
    NarRequest,
    NarView,
    OpenSession,
    OutcomeView,
    Phase,
    ServiceDuty,
    SessionDetailView,
    SessionEntry,
    SessionFilters,
    SessionHeader,
    SessionResult,
    SessionsView,
    StatusView,
    Timings,
    TranscriptLine,
    WelcomeView,
    WrapUpView,
)

Mode = Literal["normal", "hostile", "huge", "emoji"]
MODES: tuple[Mode, ...] = ("normal", "hostile", "huge", "emoji")
Card = dict[str, Any]

T0 = datetime(2025, 11, 21, 14, 5, 9, tzinfo=UTC)
HOSTILE = (
    " **bold** [x](http://evil) <script>alert(1)</script> _i_ `code` ~s~ # h"
    "\n- item\n1. one\n> quote {{DATE(2017-02-14T06:08:39Z, SHORT)}} &amp; \\"
)
HUGE_UNITS = {"huge": " 😀*_[<>\\ long text", "emoji": "😀"}
HUGE_LENGTH = 20_000
HUGE_COUNT = 400


class Maker:
    """Turns sample strings and list sizes into the chosen mode's worst case.

    hostile: markdown and HTML appended; huge: 20,000 characters and 400 items;
    emoji: the same with only astral characters (12 bytes each in ASCII-escaped JSON).
    """

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        unit = HUGE_UNITS.get(mode, "")
        self.tail = unit * (HUGE_LENGTH // len(unit)) if unit else ""
        self.cache: dict[str, str] = {}

    def s(self, value: str) -> str:
        if self.mode == "hostile":
            return value + HOSTILE
        if self.tail and value not in self.cache:
            self.cache[value] = (value + self.tail)[:HUGE_LENGTH]
        return self.cache.get(value, value)

    @property
    def huge(self) -> bool:
        return bool(self.tail)

    def n(self, count: int) -> int:
        return HUGE_COUNT if self.huge else count


def _header(
    m: Maker, modality: Modality = Modality.IM, customer: str | None = "Jane"
) -> SessionHeader:
    return SessionHeader("s-1", m.s("Sales"), m.s(customer) if customer else None, modality)


def _codes(m: Maker, prefix: str, count: int) -> tuple[Choice, ...]:
    return tuple(
        Choice(f"{prefix}{i}", m.s(f"{prefix.upper()} code {i}")) for i in range(m.n(count))
    )


def _basics(m: Maker) -> dict[str, Card]:
    return {
        "welcome_unregistered": welcome_card(WelcomeView(m.s("Switchboard"), registered=False)),
        "welcome_registered": welcome_card(WelcomeView(m.s("Switchboard"), registered=True)),
        "help": help_card(HelpView(m.s("Switchboard"))),
        "info": info_card(InfoView(m.s("Saved"), m.s("Your wrap-up was saved."))),
    }


def _status(m: Maker) -> dict[str, Card]:
    sessions = tuple(
        OpenSession(
            f"s-{i}", m.s("Sales"), m.s("Visitor 7") if i % 2 else None, SessionResult.ACCEPTED
        )
        for i in range(m.n(3))
    )
    profiles = tuple(m.s(f"Profile {i}") for i in range(m.n(7)))
    return {
        "status_available": status_card(
            StatusView(
                m.s("Ada Agent"), AgentState.AVAILABLE, m.s("Duty"), other_profiles=("Off Duty",)
            )
        ),
        "status_rona_full": status_card(
            StatusView(
                m.s("Ada Agent"),
                AgentState.RONA,
                m.s("Duty"),
                other_profiles=(m.s("Off Duty"), m.s("Back office")),
                rona=True,
                rona_session_id="",
                open_sessions=sessions,
                pending_nar=2,
                services=tuple(ServiceDuty(f"svc-{i}", m.s(f"Service {i}"), on=i % 2 == 0)
                               for i in range(m.n(8))),
            )
        ),
        "status_one_service": status_card(
            StatusView(m.s("Ada"), AgentState.AVAILABLE, "Duty",
                       services=(ServiceDuty("sales", m.s("Sales")),),
                       open_sessions=(OpenSession("s-1", m.s("Sales"), None,
                                                  SessionResult.ACCEPTED, Phase.RINGING),))
        ),
        "status_many_profiles": status_card(
            StatusView(m.s("Ada"), AgentState.OFF_DUTY, m.s("Off Duty"), other_profiles=profiles)
        ),
        "status_not_available": status_card(
            StatusView(
                m.s("Ada"), AgentState.NOT_AVAILABLE, m.s("Duty"), not_available_reason=m.s("Break")
            )
        ),
        "status_unregistered": status_card(StatusView(m.s("Ada"), AgentState.UNREGISTERED, "Duty")),
    }


def _invitations(m: Maker) -> dict[str, Card]:
    flow = tuple(m.s(name) for name in ("Sales", "Support", "Billing"))[: m.n(3)]
    flow = flow if not m.huge else tuple(m.s(f"Service {i}") for i in range(HUGE_COUNT))
    email = EmailDetails(
        m.s("jane@example.com"),
        m.s("Refund"),
        m.s("Hello, I would like a refund."),
        tuple(m.s(f"file{i}.pdf") for i in range(m.n(2))),
    )
    external = ExternalDetails(
        m.s("Call back"), m.s("Customer wants a call back."), T0, "https://crm.example.com/t/1"
    )
    return {
        "invitation_im": invitation_card(
            InvitationView(
                "s-1",
                m.s("Sales"),
                m.s("Visitor 3"),
                ImDetails(m.s("Hi, is my order shipped?")),
                ring_seconds=30,
                waited_seconds=65,
                call_flow=flow,
                context_url="https://crm.example.com/c?id=1",
                customer_fields=_fields(m),
            )
        ),
        "invitation_im_unverified": invitation_card(
            InvitationView("s-1", m.s("Sales"), m.s("Jane Roe"), ImDetails(m.s("Hi")),
                           customer_unverified=True)
        ),
        "invitation_im_minimal": invitation_card(
            InvitationView("s-1", m.s("Sales"), None, ImDetails(m.s("Hi")))
        ),
        "invitation_email": invitation_card(
            InvitationView("s-2", m.s("Support"), m.s("Jane"), email, waited_seconds=7200)
        ),
        "invitation_email_no_attachments": invitation_card(
            InvitationView("s-2", m.s("Support"), m.s("Jane"), EmailDetails("a@b.c", "Hi", "Text"))
        ),
        "invitation_external": invitation_card(
            InvitationView("s-3", m.s("Back office"), None, external, call_flow=flow)
        ),
        "invitation_external_minimal": invitation_card(
            InvitationView("s-3", m.s("Back office"), None, ExternalDetails(m.s("Task")))
        ),
    }


def _fields(m: Maker) -> tuple[tuple[str, str], ...]:
    rows = [("Name", m.s("Jane Doe")), ("Email", m.s("jane@example.com"))]
    rows += [(m.s(f"Param{i}"), m.s(f"value {i}")) for i in range(m.n(3))]
    return tuple(rows)


def _full_wrapup(m: Maker) -> WrapUpView:
    return WrapUpView(
        _header(m), SessionResult.ACCEPTED, T0,
        primary_codes=_codes(m, "p", 3), secondary_codes=_codes(m, "s", 2),
        codes_required=True, tag_suggestions=tuple(m.s(f"tag{i}") for i in range(m.n(5))),
        tags=tuple(m.s(f"tag{i}") for i in range(m.n(2))))


def _saved(m: Maker) -> ConcludedView:
    return ConcludedView(_header(m), SessionResult.ACCEPTED, T0, T0, primary_code=m.s("Sale"),
                         tags=tuple(m.s(f"tag{i}") for i in range(m.n(3))))


def _accepted(m: Maker) -> dict[str, Card]:
    targets = tuple(Choice(f"svc-{i}", m.s(f"Service {i}")) for i in range(m.n(2)))
    chat = "https://teams.microsoft.com/l/chat/19:abc@thread.v2/0"
    return {
        "accepted_im": accepted_card(AcceptedView(_header(m), chat_url=chat)),
        "accepted_im_transfer": accepted_card(
            AcceptedView(_header(m), chat_url=chat, transfer_targets=targets)
        ),
        "accepted_no_chat_url": accepted_card(AcceptedView(_header(m))),
        "accepted_im_codes_and_tags": accepted_card(AcceptedView(
            _header(m), chat_url=chat, transfer_targets=targets, wrapup=_full_wrapup(m),
            context_url="https://crm.example.com/c?id=1", customer_fields=_fields(m))),
        "accepted_im_saved": accepted_card(AcceptedView(
            _header(m), chat_url=chat, saved=_saved(m), error=m.s("Already saved."))),
        "accepted_email_codes_and_tags": accepted_card(AcceptedView(
            _header(m, Modality.EMAIL), email_subject=m.s("Refund"), email_body=m.s("Body"),
            email_sender=m.s("jane@example.com"), wrapup=_full_wrapup(m),
            context_url="https://crm.example.com/c?id=1", customer_fields=_fields(m))),
        "accepted_email": accepted_card(
            AcceptedView(
                _header(m, Modality.EMAIL),
                email_subject=m.s("Refund"),
                email_body=m.s("Dear team,\n\nplease refund order 42.\n\nJane"),
            )
        ),
        "accepted_external": accepted_card(AcceptedView(_header(m, Modality.EXTERNAL, None))),
        "accepted_email_reply": accepted_card(
            AcceptedView(
                _header(m, Modality.EMAIL),
                email_subject=m.s("Refund"),
                email_body=m.s("Dear team,\n\nplease refund order 42.\n\nJane"),
                transfer_targets=targets,
                email_sender=m.s("Jane Doe <jane@example.com>"),
                email_attachments=tuple(m.s(f"file{i}.pdf (12 KB)") for i in range(m.n(2))),
                email_others=tuple(m.s(f"cc{i}@example.com") for i in range(m.n(2))),
                error=m.s("Write your reply first."),
            )
        ),
        "accepted_email_reply_minimal": accepted_card(
            AcceptedView(_header(m, Modality.EMAIL), email_subject="", email_body="",
                         email_sender="")
        ),
        "accepted_external_details": accepted_card(
            AcceptedView(
                _header(m, Modality.EXTERNAL, None),
                transfer_targets=targets,
                external=ExternalDetails(m.s("Call back"), m.s("Customer wants a call back."),
                                         T0, "https://crm.example.com/t/1"),
            )
        ),
    }


def _outcomes(m: Maker) -> dict[str, Card]:
    plain = OutcomeView(_header(m))
    rona = OutcomeView(_header(m), rona_set=True)
    builders: dict[str, tuple[Callable[[OutcomeView], Card], OutcomeView]] = {
        "declined": (declined_card, plain),
        "declined_rona": (declined_card, rona),
        "missed_rona": (missed_card, rona),
        "missed_no_rona": (missed_card, plain),
        "cancelled": (cancelled_card, plain),
        "cancelled_withdrawn": (cancelled_card, OutcomeView(_header(m), reason="requester")),
        "cancelled_by_supervisor": (cancelled_card, OutcomeView(_header(m), reason="supervisor")),
        "cancelled_idle": (cancelled_card, OutcomeView(_header(m), reason="system")),
        "taken": (taken_card, plain),
        "expired": (expired_card, OutcomeView(_header(m, Modality.EMAIL, None))),
        "failed": (failed_card, OutcomeView(_header(m), reason=m.s("Graph returned 403"))),
        "failed_no_reason": (failed_card, plain),
        "stale": (stale_card, OutcomeView(_header(m), reason=m.s("The session was terminated."))),
        "terminated": (terminated_card, plain),
    }
    return {name: build(view) for name, (build, view) in builders.items()}


def _wrapups(m: Maker) -> dict[str, Card]:
    timings = Timings(ring_seconds=12, queue_seconds=65, connected_seconds=7260, acw_seconds=20)
    full = WrapUpView(
        _header(m),
        SessionResult.ACCEPTED,
        T0,
        timings,
        primary_codes=_codes(m, "p", 3),
        secondary_codes=_codes(m, "s", 2),
        codes_required=True,
        primary_code="p1",
        tag_suggestions=tuple(m.s(f"tag{i}") for i in range(m.n(5))),
        tags=tuple(m.s(f"tag{i}") for i in range(m.n(2))),
        error=m.s("Choose a primary code"),
        acw_until=T0 + timedelta(seconds=20),
        can_extend_acw=True,
        can_end_acw=True,
    )
    return {
        "wrapup_full": wrapup_card(full),
        "wrapup_minimal": wrapup_card(
            WrapUpView(_header(m, customer=None), SessionResult.ACCEPTED, T0)
        ),
        "wrapup_optional_codes": wrapup_card(
            WrapUpView(
                _header(m, Modality.EMAIL),
                SessionResult.RONA,
                T0,
                primary_codes=_codes(m, "p", 2),
                tag_suggestions=(m.s("vip"),),
                acw_until=T0,
                can_end_acw=True,
            )
        ),
    }


def _concluded(m: Maker) -> dict[str, Card]:
    full = ConcludedView(
        _header(m),
        SessionResult.ACCEPTED,
        T0,
        T0 + timedelta(minutes=5),
        Timings(3, 40, 250, 20),
        primary_code=m.s("Sale"),
        secondary_code=m.s("Upsell"),
        tags=tuple(m.s(f"tag{i}") for i in range(m.n(3))),
    )
    minimal = ConcludedView(_header(m, customer=None), SessionResult.DECLINED, T0, T0)
    in_acw = ConcludedView(_header(m), SessionResult.ACCEPTED, T0, T0, error=m.s("Saved once."),
                           acw_until=T0, can_extend_acw=True, can_end_acw=True,
                           context_url="https://crm.example.com/c?id=1")
    return {"concluded_full": concluded_card(full), "concluded_minimal": concluded_card(minimal),
            "concluded_in_acw": concluded_card(in_acw)}


def _sessions(m: Maker) -> dict[str, Card]:
    results = list(SessionResult)
    entries = tuple(
        SessionEntry(
            f"s-{i}",
            results[i % len(results)],
            m.s("Sales"),
            m.s("Visitor 4") if i % 3 else None,
            T0 - timedelta(hours=i),
            is_open=i % 2 == 0,
            modality=list(Modality)[i % 3],
            phase=list(Phase)[i % 4],
            timings=Timings(12, 65, 300 if i % 2 else None, 20 if i % 3 else None),
        )
        for i in range(m.n(15))
    )
    detail = SessionDetailView(
        entries[0] if entries else SessionEntry("s-0", SessionResult.ACCEPTED, "Sales", None, T0),
        call_flow=tuple(m.s(f"Service {i}") for i in range(m.n(3))),
        primary_code=m.s("Sale"), secondary_code=m.s("Upsell"),
        tags=tuple(m.s(f"tag{i}") for i in range(m.n(4))), saved_at=T0,
        email_subject=m.s("Refund"), context_url="https://crm.example.com/c?id=1",
        customer_fields=_fields(m))
    return {
        "sessions_page": sessions_card(
            SessionsView(entries, page=2, has_previous=True, has_next=True, query=m.s("refund"))
        ),
        "sessions_first_page": sessions_card(SessionsView(entries, has_next=True)),
        "sessions_empty": sessions_card(SessionsView((), query=m.s("nothing"))),
        "sessions_filtered": sessions_card(SessionsView(
            entries, has_next=True, filters=SessionFilters(m.s("jane"), "missed", "email",
                                                           "7d"))),
        "session_detail_full": session_detail_card(detail),
        "session_detail_minimal": session_detail_card(SessionDetailView(
            SessionEntry("s-1", SessionResult.DECLINED, m.s("Sales"), None, T0))),
    }


def _nar(m: Maker) -> dict[str, Card]:
    requests = tuple(NarRequest(f"r-{i}", T0 - timedelta(hours=i)) for i in range(m.n(3)))
    reasons = tuple(Choice(f"reason-{i}", m.s(f"Reason {i}")) for i in range(m.n(4)))
    return {
        "nar_one": nar_card(NarView(requests[:1], reasons)),
        "nar_many": nar_card(NarView(requests, reasons, error=m.s("Choose a reason"))),
        "nar_none": nar_card(NarView((), reasons)),
    }


def _message(m: Maker, i: int) -> str:
    """Line i of a transcript: in huge modes 5,000 lines of 2,000 characters each."""
    return f"Message {i}{m.tail[:2_000]}" if m.huge else m.s(f"Message {i}")


def _chat(m: Maker) -> dict[str, Card]:
    lines = tuple(
        TranscriptLine(
            m.s("Visitor 3" if i % 2 else "Bot"), _message(m, i), T0 + timedelta(seconds=i)
        )
        for i in range(5_000 if m.huge else 4)
    )
    full = ChatHeaderView(
        "s-1",
        m.s("Sales ¦ Visitor 3"),
        m.s("Jane Doe"),
        m.s("jane@example.com"),
        m.s("+41 44 123 45 67"),
        "https://crm.example.com/c?id=1",
        lines,
    )
    return {
        "chat_header_full": chat_header_card(full),
        "chat_header_minimal": chat_header_card(ChatHeaderView("s-1", m.s("Sales ¦ Visitor 3"))),
        "chat_header_wrapup": chat_header_card(replace(full, wrapup=_full_wrapup(m))),
        "chat_header_saved_ended": chat_header_card(
            replace(full, live=False, saved=_saved(m), error=m.s("Already saved."))),
    }


GROUPS = (
    _basics,
    _status,
    _invitations,
    _accepted,
    _outcomes,
    _wrapups,
    _concluded,
    _sessions,
    _nar,
    _chat,
)


def all_samples(mode: Mode = "normal") -> dict[str, Card]:
    """name → card for every builder and flag combination."""
    maker = Maker(mode)
    cards: dict[str, Card] = {}
    for group in GROUPS:
        cards.update(group(maker))
    return cards
