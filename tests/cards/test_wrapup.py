"""The wrap-up form and the concluded card."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.cards import concluded_card, wrapup_card
from bot.cards.budget import fits
from bot.cards.views import (
    Choice,
    ConcludedView,
    Modality,
    SessionHeader,
    SessionResult,
    Timings,
    WrapUpView,
)

from .walk import all_text, by_verb, inputs, verbs

T0 = datetime(2025, 11, 21, 14, 5, 9, tzinfo=UTC)
HEADER = SessionHeader("s-1", "Sales", "Visitor 3", Modality.IM)
PRIMARY = (Choice("p1", "Sale"), Choice("p2", "No sale"))
SECONDARY = (Choice("s1", "Upsell"),)
FULL = WrapUpView(
    HEADER,
    SessionResult.ACCEPTED,
    T0,
    Timings(ring_seconds=12, queue_seconds=65, connected_seconds=7_260),
    primary_codes=PRIMARY,
    secondary_codes=SECONDARY,
    codes_required=True,
    primary_code="p2",
    tag_suggestions=("vip", "refund", "vip"),
    tags=("refund", "new"),
    error="Choose a primary code",
    acw_until=T0 + timedelta(seconds=20),
    can_extend_acw=True,
    can_end_acw=True,
)


def test_save_sends_the_session_and_inputs() -> None:
    card = wrapup_card(FULL)
    (save,) = by_verb(card, "save_wrapup")
    assert save["data"] == {"session_id": "s-1"}
    assert save["fallback"]["data"] == {"session_id": "s-1", "verb": "save_wrapup"}
    assert "associatedInputs" not in save  # Save validates and sends the inputs
    assert set(inputs(card)) == {"primary_code", "secondary_code", "tags", "new_tags"}


def test_code_pick_lists() -> None:
    fields = inputs(wrapup_card(FULL))
    primary, secondary = fields["primary_code"], fields["secondary_code"]
    assert primary["type"] == secondary["type"] == "Input.ChoiceSet"
    assert primary["style"] == secondary["style"] == "compact"
    assert primary["choices"] == [
        {"title": "Sale", "value": "p1"},
        {"title": "No sale", "value": "p2"},
    ]
    assert primary["value"] == "p2"
    assert primary["isRequired"] is True
    assert primary["errorMessage"] == "Choose a primary code"
    assert not secondary.get("isRequired")


def test_codes_optional_when_not_required() -> None:
    primary = inputs(wrapup_card(replace(FULL, codes_required=False)))["primary_code"]
    assert not primary.get("isRequired") and "errorMessage" not in primary


def test_no_code_lists_without_codes() -> None:
    fields = inputs(wrapup_card(replace(FULL, primary_codes=(), secondary_codes=())))
    assert "primary_code" not in fields and "secondary_code" not in fields


def test_tags_typeahead() -> None:
    tags = inputs(wrapup_card(FULL))["tags"]
    assert tags["type"] == "Input.ChoiceSet"
    assert tags["isMultiSelect"] is True
    assert tags["style"] == "filtered"
    assert tags["choices.data"] == {"type": "Data.Query", "dataset": "tags"}
    assert [c["value"] for c in tags["choices"]] == ["refund", "new", "vip"]
    assert tags["value"] == "refund,new"
    new_tags = inputs(wrapup_card(FULL))["new_tags"]
    assert new_tags["type"] == "Input.Text" and "comma-separated" in new_tags["placeholder"]


def test_tags_without_anything_to_suggest_keep_the_free_text_input() -> None:
    fields = inputs(wrapup_card(replace(FULL, tag_suggestions=(), tags=())))
    assert "tags" not in fields  # an empty pick list is invalid; nothing to suggest anyway
    assert fields["new_tags"]["label"] == "Tags"


def test_suggestions_only_no_preselection() -> None:
    tags = inputs(wrapup_card(replace(FULL, tags=())))["tags"]
    assert [c["value"] for c in tags["choices"]] == ["vip", "refund"]
    assert "value" not in tags


def test_at_most_15_suggestions() -> None:
    view = replace(FULL, tags=(), tag_suggestions=tuple(f"t{i}" for i in range(40)))
    assert len(inputs(wrapup_card(view))["tags"]["choices"]) == 15


def test_acw_buttons_follow_the_flags() -> None:
    card = wrapup_card(FULL)
    assert verbs(card) == {"save_wrapup", "extend_acw", "end_acw"}
    for verb in ("extend_acw", "end_acw"):
        (action,) = by_verb(card, verb)
        assert action["data"] == {"session_id": "s-1"}
        assert action["associatedInputs"] == "none"  # no required code blocks the ACW buttons
        assert action["fallback"]["associatedInputs"] == "none"
    plain = wrapup_card(replace(FULL, can_extend_acw=False, can_end_acw=False))
    assert verbs(plain) == {"save_wrapup"}
    only_end = wrapup_card(replace(FULL, can_extend_acw=False))
    assert verbs(only_end) == {"save_wrapup", "end_acw"}


def test_wrapup_texts() -> None:
    text = all_text(wrapup_card(FULL))
    assert "After-call work ends at 14:05:29 UTC" in text
    assert "Choose a primary code" in text
    assert "Accepted" in text and "Fri 21 Nov 2025, 14:05 UTC" in text
    assert "12 seconds" in text and "1 minute 5 seconds" in text and "2 hours 1 minute" in text
    minimal = all_text(wrapup_card(replace(FULL, acw_until=None, error=None)))
    assert "After-call work ends" not in minimal and "Choose a primary code" not in minimal


def test_wrapup_fits_with_many_codes_and_tags() -> None:
    many = tuple(Choice(f"c{i}", "Code " + "x" * 200) for i in range(500))
    view = replace(
        FULL,
        primary_codes=many,
        secondary_codes=many,
        tags=tuple(f"tag {i} " + "y" * 300 for i in range(200)),
        tag_suggestions=tuple(f"s{i}" for i in range(500)),
    )
    card = wrapup_card(view)
    assert fits(card)
    tags = inputs(card)["tags"]
    assert all(len(c["value"]) <= 50 for c in tags["choices"])
    assert set(tags["value"].split(",")) <= {c["value"] for c in tags["choices"]}


CONCLUDED = ConcludedView(
    HEADER,
    SessionResult.ACCEPTED,
    T0,
    T0 + timedelta(minutes=5),
    Timings(3, 40, 250, 20),
    primary_code="Sale",
    secondary_code="Upsell",
    tags=("vip", "refund"),
)


def test_concluded_shows_everything_saved() -> None:
    card = concluded_card(CONCLUDED)
    assert verbs(card) == set()
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts == {
        "Result": "Accepted",
        "Service": "Sales",
        "Customer": "Visitor 3",
        "Started": "Fri 21 Nov 2025, 14:05 UTC",
        "Ringing": "3 seconds",
        "In queue": "40 seconds",
        "Connected": "4 minutes 10 seconds",
        "After-call work": "20 seconds",
        "Primary code": "Sale",
        "Secondary code": "Upsell",
        "Tags": "vip, refund",
        "Saved": "Fri 21 Nov 2025, 14:10 UTC",
    }


def test_concluded_without_customer_codes_or_tags() -> None:
    view = ConcludedView(replace(HEADER, customer=None), SessionResult.DECLINED, T0, T0)
    card = concluded_card(view)
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Customer"] == "Not available"
    assert facts["Primary code"] == facts["Tags"] == "None"
    assert "Ringing" not in facts
