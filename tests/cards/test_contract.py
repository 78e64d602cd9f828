"""Rules every card keeps, checked on every sample in every mode (normal, hostile, huge, emoji)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from bot.cards.budget import MAX_CARD_BYTES, card_bytes
from bot.cards.verbs import InputId, Verb

from .samples import MODES, Mode, all_samples
from .walk import executes, inputs, nodes, of_type, shown_texts

DATA_KEYS: dict[str, set[str]] = {
    "register": set(),
    "unregister": set(),
    "accept": {"session_id"},
    "decline": {"session_id"},
    "terminate": {"session_id"},
    "reset_rona": {"session_id"},
    "save_wrapup": {"session_id"},
    "extend_acw": {"session_id"},
    "end_acw": {"session_id"},
    "complete": {"session_id"},
    "transfer": {"session_id"},
    "sessions_page": {"page", "query", "result", "modality", "period"},
    "open_session": {"session_id"},
    "service_duty": {"service_id", "on"},
    "fill_nar": {"request_id"},
    "duty": {"profile"},
    "reply": {"session_id"},
    "reply_all": {"session_id"},
    "mark_handled": {"session_id"},
}
INPUTS_OF: dict[str, set[str]] = {
    "save_wrapup": {"primary_code", "secondary_code", "tags", "new_tags"},
    "transfer": {"target_service"},
    "fill_nar": {"nar_reason"},
    "duty": {"profile"},
    "reply": {"reply_text"},
    "reply_all": {"reply_text"},
    "sessions_page": {"search", "result_filter", "modality_filter", "period_filter"},
}


@cache
def samples(mode: Mode) -> dict[str, dict[str, Any]]:
    return all_samples(mode)


def card_for(mode: Mode, name: str) -> dict[str, Any]:
    return samples(mode)[name]


CASES = [(mode, name) for mode in MODES for name in samples(mode)]


def test_the_contract_matches_the_enums() -> None:
    assert set(DATA_KEYS) == {verb.value for verb in Verb}
    assert set().union(*INPUTS_OF.values()) == {input_id.value for input_id in InputId}


def test_samples_cover_every_builder() -> None:
    import bot.cards as cards

    builders = {name for name in cards.__all__ if name.endswith("_card")}
    covered = {name.split("_")[0] for name in samples("normal")}
    assert {b.split("_")[0] for b in builders} <= covered
    used = set().union(*(set(v["verb"] for v in executes(c)) for c in samples("normal").values()))
    assert used == set(DATA_KEYS)


@pytest.mark.parametrize(("mode", "name"), CASES)
def test_envelope_and_size(mode: Mode, name: str) -> None:
    card = card_for(mode, name)
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert "refresh" not in card
    assert card_bytes(card) < MAX_CARD_BYTES


@pytest.mark.parametrize(("mode", "name"), CASES)
def test_universal_actions_with_submit_fallback(mode: Mode, name: str) -> None:
    card = card_for(mode, name)
    fields = inputs(card)
    for action in executes(card):
        verb, data, fallback = action["verb"], action["data"], action["fallback"]
        assert verb in DATA_KEYS
        assert fallback["type"] == "Action.Submit"
        assert fallback["title"] == action["title"]
        assert fallback["data"] == {**data, "verb": verb}
        assert fallback.get("associatedInputs") == action.get("associatedInputs")
        if verb == "duty" and not data:
            assert "profile" in fields  # the pick list supplies the profile
        elif name.startswith("chat_header"):  # the chatroom's buttons say where they are
            assert data.pop("surface") == "chatroom" and verb in {"terminate", "save_wrapup"}
            assert set(data) == DATA_KEYS[verb], verb
        else:
            assert set(data) == DATA_KEYS[verb], verb
        assert all(isinstance(v, str) for k, v in data.items() if k != "page")
        if "page" in data:
            assert isinstance(data["page"], int) and data["page"] >= 0


@pytest.mark.parametrize(("mode", "name"), CASES)
def test_inputs_belong_to_a_button(mode: Mode, name: str) -> None:
    card = card_for(mode, name)
    ids = [node["id"] for node in nodes(card) if str(node.get("type")).startswith("Input.")]
    assert len(ids) == len(set(ids))
    allowed = set().union(*(INPUTS_OF.get(a["verb"], set()) for a in executes(card)))
    assert set(ids) <= allowed
    for field in inputs(card).values():
        assert field.get("label")
        if field.get("isRequired"):
            assert field.get("errorMessage")
        for choice in field.get("choices", []):
            assert choice["title"] and choice["value"]


@pytest.mark.parametrize(("mode", "name"), CASES)
def test_links_are_http(mode: Mode, name: str) -> None:
    for action in of_type(card_for(mode, name), "Action.OpenUrl"):
        assert action["url"].startswith(("https://", "http://"))


@pytest.mark.parametrize("name", list(samples("hostile")))
def test_hostile_text_is_never_markup(name: str) -> None:
    for text in shown_texts(card_for("hostile", name)):
        assert "**bold**" not in text
        assert "[x](" not in text
        assert "<" not in text and ">" not in text
        assert "{{DATE(" not in text
        assert "\n- item" not in text and "\n1. one" not in text
