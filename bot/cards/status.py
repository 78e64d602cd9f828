"""The agent's status card: state, duty profile, RONA, open sessions, pending reasons."""

from __future__ import annotations

from bot.cards.budget import Card, within
from bot.cards.common import customer_label, state_label
from bot.cards.elements import action_set, adaptive_card, choice_set, execute, facts, text
from bot.cards.sessions import state_label as session_state
from bot.cards.text import NAME, shown, truncate
from bot.cards.verbs import InputId, Verb
from bot.cards.views import Choice, StatusView

MAX_PROFILE_BUTTONS = 5
PROFILE_BYTES = 4_000  # JSON bytes of the profile names offered in a pick list
MAX_OPEN_SESSIONS = 20
MAX_SERVICES = 20
MAX_SERVICE_BUTTONS = 5  # an ActionSet holds at most 5 in Teams


def _services(view: StatusView) -> list[Card | None]:
    """Per service: taking its tasks or not, and a switch (the `service` command for many)."""
    if not view.services:
        return []
    listed = view.services[:MAX_SERVICES]
    rows = [(shown(s.name, NAME), "Taking tasks" if s.on else "Off") for s in listed]
    buttons = [
        execute(f"{truncate(s.name, NAME)}: {'off' if s.on else 'on'}", Verb.SERVICE_DUTY,
                {"service_id": s.service_id, "on": "0" if s.on else "1"}, with_inputs=False)
        for s in listed[:MAX_SERVICE_BUTTONS]
    ]
    more = len(view.services) > MAX_SERVICE_BUTTONS
    return [
        text("Services", weight="bolder", separator=True),
        facts(rows),
        action_set(buttons),
        text("For the others type **service**, a service name, then **off** or **on**.",
             subtle=True) if more else None,
    ]


def _profiles(profiles: tuple[str, ...]) -> list[Card | None]:
    """One button per profile, or a pick list and one button when there are many."""
    if not profiles:
        return []
    names = [truncate(p, NAME) for p in profiles]  # profile names are short; longer ones are cut
    if len(profiles) <= MAX_PROFILE_BUTTONS:
        buttons = [execute(p, Verb.DUTY, {"profile": p}) for p in names]
        return [text("Switch duty profile", weight="bolder", separator=True), action_set(buttons)]
    choices = [Choice(p, p) for p in within(names, PROFILE_BYTES)]
    return [
        text("Switch duty profile", weight="bolder", separator=True),
        choice_set(
            InputId.PROFILE,
            "Duty profile",
            choices,
            required=True,
            error_message="Choose a duty profile",
        ),
        action_set([execute("Switch", Verb.DUTY)]),
    ]


def _open_sessions(view: StatusView) -> list[Card | None]:
    if not view.open_sessions:
        return [text("No open sessions.", subtle=True, separator=True)]
    shown_sessions = view.open_sessions[:MAX_OPEN_SESSIONS]
    rows = [
        (shown(s.service, NAME),
         f"{customer_label(s.customer)} · {session_state(s.phase, s.result)}")
        for s in shown_sessions
    ]
    hidden = len(view.open_sessions) - len(shown_sessions)
    return [
        text(f"Open sessions ({len(view.open_sessions)})", weight="bolder", separator=True),
        facts(rows),
        text(f"… and {hidden} more: type **sessions**", subtle=True) if hidden else None,
    ]


def status_card(view: StatusView) -> Card:
    """Where the agent stands, with Reset RONA and duty profile switches."""
    rows = [
        ("State", state_label(view.state, view.not_available_reason)),
        ("Duty profile", shown(view.duty_profile, NAME)),
    ]
    if view.rona:
        rows.append(("RONA", "Set: you receive no tasks until it is reset"))
    if view.pending_nar:
        rows.append(("Not-available reasons", f"{view.pending_nar} to fill out: type **nar**"))
    reset = execute(
        "Reset RONA",
        Verb.RESET_RONA,
        {"session_id": view.rona_session_id},
        style="positive",
        with_inputs=False,
    )
    return adaptive_card(
        [
            text("Your status", weight="bolder", size="medium"),
            text(shown(view.agent_name, NAME), subtle=True, spacing="none"),
            facts(rows),
            action_set([reset]) if view.rona else None,
            *_profiles(view.other_profiles),
            *_services(view),
            *_open_sessions(view),
        ]
    )
