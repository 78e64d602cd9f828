"""The status card."""

from __future__ import annotations

import pytest

from bot.cards import status_card
from bot.cards.views import AgentState, OpenSession, SessionResult, StatusView

from .walk import all_text, by_verb, inputs, of_type, verbs


@pytest.mark.parametrize(
    ("state", "reason", "label"),
    [
        (AgentState.AVAILABLE, None, "Available"),
        (AgentState.RONA, None, "RONA"),
        (AgentState.OFF_DUTY, None, "Off duty"),
        (AgentState.RINGING, None, "Ringing"),
        (AgentState.BUSY, None, "Busy"),
        (AgentState.ACW, None, "After-call work"),
        (AgentState.NOT_AVAILABLE, "Break", "Not available \\(Break\\)"),
        (AgentState.NOT_AVAILABLE, None, "Not available"),
        (AgentState.UNREGISTERED, None, "Unregistered"),
    ],
)
def test_state_label(state: AgentState, reason: str | None, label: str) -> None:
    card = status_card(StatusView("Ada", state, "Duty", not_available_reason=reason))
    facts = {f["title"]: f["value"] for f in of_type(card, "FactSet")[0]["facts"]}
    assert facts["State"] == label
    assert facts["Duty profile"] == "Duty"


def test_reset_rona_only_when_flagged() -> None:
    assert "reset_rona" not in verbs(status_card(StatusView("Ada", AgentState.AVAILABLE, "Duty")))
    card = status_card(StatusView("Ada", AgentState.RONA, "Duty", rona=True))
    (reset,) = by_verb(card, "reset_rona")
    assert reset["title"] == "Reset RONA"
    assert reset["data"] == {"session_id": ""}
    assert reset["fallback"]["data"] == {"session_id": "", "verb": "reset_rona"}
    assert "RONA" in all_text(card)


def test_profile_buttons() -> None:
    card = status_card(
        StatusView("Ada", AgentState.AVAILABLE, "Duty", other_profiles=("Off Duty", "Back office"))
    )
    duty = by_verb(card, "duty")
    assert [a["title"] for a in duty] == ["Off Duty", "Back office"]
    assert [a["data"] for a in duty] == [{"profile": "Off Duty"}, {"profile": "Back office"}]
    assert duty[0]["fallback"]["data"] == {"profile": "Off Duty", "verb": "duty"}
    assert "profile" not in inputs(card)


def test_many_profiles_become_a_pick_list() -> None:
    profiles = tuple(f"Profile {i}" for i in range(8))
    card = status_card(StatusView("Ada", AgentState.AVAILABLE, "Duty", other_profiles=profiles))
    (switch,) = by_verb(card, "duty")
    assert switch["data"] == {}
    picker = inputs(card)["profile"]
    assert [c["value"] for c in picker["choices"]] == list(profiles)
    assert picker["isRequired"] is True


def test_no_profile_switch_without_other_profiles() -> None:
    assert "duty" not in verbs(status_card(StatusView("Ada", AgentState.AVAILABLE, "Duty")))


def test_open_sessions_and_pending_reasons() -> None:
    sessions = (
        OpenSession("s-1", "Sales", "Visitor 3", SessionResult.ACCEPTED),
        OpenSession("s-2", "Support", None, SessionResult.RONA),
    )
    card = status_card(
        StatusView("Ada", AgentState.ACW, "Duty", open_sessions=sessions, pending_nar=2)
    )
    text = all_text(card)
    assert "Open sessions (2)" in text
    assert "Visitor 3 · Accepted" in text
    assert "Not available · RONA" in text
    assert "2 to fill out" in text


def test_many_open_sessions_are_summarized() -> None:
    sessions = tuple(
        OpenSession(f"s-{i}", "Sales", None, SessionResult.ACCEPTED) for i in range(30)
    )
    card = status_card(StatusView("Ada", AgentState.BUSY, "Duty", open_sessions=sessions))
    assert "and 10 more" in all_text(card)


def test_status_escapes_names() -> None:
    hostile = "**x** <b>"
    card = status_card(
        StatusView(
            hostile,
            AgentState.NOT_AVAILABLE,
            hostile,
            not_available_reason=hostile,
            open_sessions=(OpenSession("s", hostile, hostile, SessionResult.ACCEPTED),),
        )
    )
    text = all_text(card)
    assert "**x**" not in text and "<b>" not in text
