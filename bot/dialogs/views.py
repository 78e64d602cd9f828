"""Translate domain entities into the view models the card builders render."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from bot.cards import views as v
from bot.domain.agent import Agent, derive_state
from bot.domain.chatroom import session_topic
from bot.domain.context_url import context_url
from bot.domain.customer import Customer
from bot.domain.message import ChatMessage
from bot.domain.service import Catalog, Modality, Service
from bot.domain.session import Phase, Session, SessionResult
from bot.domain.task import Task

NOT_AVAILABLE = None  # cards print "Not available" for a customer label of None


def header(session: Session) -> v.SessionHeader:
    return v.SessionHeader(session_id=session.id, service=session.service_name or
                           session.service_id, customer=session.customer_label or NOT_AVAILABLE,
                           modality=session.modality,
                           customer_unverified=unverified(session))


def unverified(session: Session) -> bool:
    return session.customer is not None and session.customer.unverified


def customer_fields(customer: Customer | None) -> tuple[tuple[str, str], ...]:
    """The customer's details, then the custom parameters, as (name, value) rows."""
    if customer is None:
        return ()
    rows = [("Name", customer.name), ("Email", customer.email), ("Phone", customer.phone)]
    rows += sorted(customer.params.items())
    return tuple((name, value) for name, value in rows if value)


def session_context_url(session: Session, catalog: Catalog) -> str | None:
    """The service's context link filled from the session's customer (None once removed)."""
    service = catalog.services.get(session.service_id)
    return context_url(service.context.url, session.customer) if service else None


def timings(session: Session) -> v.Timings:
    def seconds(delta: Any) -> float | None:
        return delta.total_seconds() if delta is not None else None

    return v.Timings(ring_seconds=seconds(session.ring_time()),
                     queue_seconds=seconds(session.queue_time()),
                     connected_seconds=seconds(session.connected_time()),
                     acw_seconds=seconds(session.acw_time()))


def _parse_due(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def invitation(session: Session, task: Task, catalog: Catalog, now: datetime) -> v.InvitationView:
    content = task.content
    details: v.ImDetails | v.EmailDetails | v.ExternalDetails
    if task.modality is Modality.EMAIL:
        details = v.EmailDetails(sender=str(content.get("sender", "")),
                                 subject=str(content.get("subject", "")),
                                 preview=str(content.get("preview", "")),
                                 attachments=tuple(str(a) for a in content.get("attachments", [])))
    elif task.modality is Modality.EXTERNAL:
        details = _external(content)
    else:
        details = v.ImDetails(first_message=str(content.get("text", "")))
    service = catalog.services.get(session.service_id)
    return v.InvitationView(
        session_id=session.id,
        service=session.service_name or session.service_id,
        customer=session.customer_label or NOT_AVAILABLE,
        details=details,
        ring_seconds=(session.ring_until
                      - (session.delivered_at or session.offered_at)).total_seconds(),
        waited_seconds=max(0.0, (now - task.created_at).total_seconds()),
        call_flow=tuple(catalog.services[s].name if s in catalog.services else s
                        for s in task.call_flow),
        context_url=context_url(service.context.url, task.customer) if service else None,
        customer_unverified=unverified(session),
        customer_fields=customer_fields(task.customer),
    )


def wrapup(session: Session, catalog: Catalog, *, suggestions: tuple[str, ...] = (),
           error: str | None = None) -> v.WrapUpView:
    service = catalog.services.get(session.service_id)
    codes = service.codes if service else None
    return v.WrapUpView(
        header=header(session),
        result=session.result or SessionResult.ACCEPTED,
        started_at=session.offered_at,
        timings=timings(session),
        primary_codes=tuple(v.Choice(c, c) for c in codes.primary) if codes else (),
        secondary_codes=tuple(v.Choice(c, c) for c in codes.secondary) if codes else (),
        codes_required=bool(codes and codes.required),
        primary_code=session.primary_code,
        secondary_code=session.secondary_code,
        tag_suggestions=suggestions,
        tags=tuple(session.tags),
        error=error,
        **acw_controls(session, service),
        context_url=session_context_url(session, catalog),
    )


class AcwControls(TypedDict):
    acw_until: datetime | None
    can_extend_acw: bool
    can_end_acw: bool


def acw_controls(session: Session, service: Service | None) -> AcwControls:
    """While after-call work runs: its end, and whether the service lets the agent extend
    it (once) or end it early."""
    in_acw = session.phase is Phase.ACW
    return AcwControls(
        acw_until=session.acw_until if in_acw else None,
        can_extend_acw=bool(in_acw and service and service.acw.extendable
                            and not session.acw_extended),
        can_end_acw=bool(in_acw and service and service.acw.allow_early_end))


def concluded(session: Session, catalog: Catalog | None = None, *,
              error: str | None = None) -> v.ConcludedView:
    assert session.saved_at is not None
    service = catalog.services.get(session.service_id) if catalog else None
    return v.ConcludedView(
        header=header(session),
        result=session.result or SessionResult.ACCEPTED,
        started_at=session.offered_at, saved_at=session.saved_at, timings=timings(session),
        primary_code=session.primary_code, secondary_code=session.secondary_code,
        tags=tuple(session.tags),
        error=error,
        **acw_controls(session, service),
        context_url=session_context_url(session, catalog) if catalog else None)


def transfer_targets(session: Session, catalog: Catalog) -> tuple[v.Choice, ...]:
    return tuple(v.Choice(s.id, s.name) for s in catalog.services.values()
                 if s.id != session.service_id and session.modality in s.modalities)


def _external(content: dict[str, Any]) -> v.ExternalDetails:
    return v.ExternalDetails(title=str(content.get("title", "")),
                             description=str(content.get("description", "")),
                             due=_parse_due(content.get("due")),
                             link=content.get("link") or None)


def accepted(session: Session, task: Task | None, catalog: Catalog, *,
             error: str | None = None, suggestions: tuple[str, ...] = ()) -> v.AcceptedView:
    email = task is not None and task.modality is Modality.EMAIL
    external = task is not None and task.modality is Modality.EXTERNAL
    content = task.content if task is not None else {}
    return v.AcceptedView(
        header=header(session),
        chat_url=session.chat_url,
        email_subject=str(content.get("subject", "")) if email else None,
        email_body=str(content.get("text", "")) if email else None,
        transfer_targets=transfer_targets(session, catalog),
        email_sender=str(content.get("sender", "")) if email else None,
        email_attachments=tuple(str(a) for a in content.get("attachments", [])) if email
        else (),
        email_others=tuple(str(a) for a in content.get("others", [])) if email else (),
        external=_external(content) if external else None,
        error=error,
        context_url=session_context_url(session, catalog),
        customer_fields=customer_fields(task.customer if task is not None else session.customer),
        wrapup=wrapup(session, catalog, suggestions=suggestions)
        if session.saved_at is None else None,
        saved=concluded(session) if session.saved_at is not None else None,
    )


def status(agent: Agent, catalog: Catalog, now: datetime,
           open_sessions: list[Session]) -> v.StatusView:
    state = derive_state(agent, catalog, now)
    return v.StatusView(
        agent_name=agent.name,
        state=state,
        duty_profile=agent.profile,
        not_available_reason=agent.profile if state.value == "not_available" else None,
        other_profiles=tuple(p for p, _ in catalog.profiles if p != agent.profile),
        rona=agent.is_rona(now),
        open_sessions=tuple(
            v.OpenSession(session_id=s.id, service=s.service_name or s.service_id,
                          customer=s.customer_label or NOT_AVAILABLE,
                          result=s.result or SessionResult.ACCEPTED,
                          phase=s.phase)
            for s in open_sessions),
        pending_nar=len(agent.pending_nar(now)),
        services=tuple(
            v.ServiceDuty(service_id=s, name=catalog.services[s].name,
                          on=s not in agent.paused_services)
            for s in agent.services if s in catalog.services),
    )


def session_entry(session: Session) -> v.SessionEntry:
    return v.SessionEntry(
        session_id=session.id,
        result=session.result or SessionResult.ACCEPTED,
        service=session.service_name or session.service_id,
        customer=session.customer_label or NOT_AVAILABLE,
        started_at=session.offered_at,
        is_open=session.is_open and not session.live,
        modality=session.modality,
        phase=session.phase,
        timings=timings(session),
    )


def session_detail(session: Session, task: Task | None, catalog: Catalog) -> v.SessionDetailView:
    """What an opened entry shows; the customer's details only while the session keeps them."""
    flow = task.call_flow if task is not None else [session.service_id]
    return v.SessionDetailView(
        entry=session_entry(session),
        call_flow=tuple(catalog.services[s].name if s in catalog.services else s for s in flow),
        primary_code=session.primary_code,
        secondary_code=session.secondary_code,
        tags=tuple(session.tags),
        saved_at=session.saved_at,
        email_subject=session.subject or None,
        context_url=session_context_url(session, catalog),
        customer_fields=customer_fields(session.customer),
    )


def nar(agent: Agent, catalog: Catalog, now: datetime, error: str | None = None) -> v.NarView:
    return v.NarView(
        requests=tuple(v.NarRequest(request_id=r.id, created_at=r.created_at)
                       for r in agent.pending_nar(now)),
        reasons=tuple(v.Choice(r, r) for r in catalog.nar_reasons),
        error=error,
    )


def chat_header(session: Session, catalog: Catalog, messages: list[ChatMessage], *,
                suggestions: tuple[str, ...] = (), error: str | None = None) -> v.ChatHeaderView:
    """The chatroom's header: the transcript it was posted with, and the session's codes and
    tags (a form until saved) and Terminate while they apply."""
    service = catalog.services.get(session.service_id)
    customer = session.customer
    open_ = session.phase in (Phase.CONNECTED, Phase.ACW)
    return v.ChatHeaderView(
        session_id=session.id,
        topic=session_topic(session),
        customer_name=(customer.name or None) if customer else None,
        customer_email=(customer.email or None) if customer else None,
        customer_phone=(customer.phone or None) if customer else None,
        context_url=context_url(service.context.url, customer) if service else None,
        transcript=tuple(v.TranscriptLine(sender=m.sender.value, text=m.text, at=m.at)
                         for m in messages),
        live=session.phase is Phase.CONNECTED,
        wrapup=wrapup(session, catalog, suggestions=suggestions)
        if open_ and session.saved_at is None else None,
        saved=concluded(session) if session.saved_at is not None else None,
        error=error,
    )
