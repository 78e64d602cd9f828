"""Welcome, help and info cards."""

from __future__ import annotations

from bot.cards import help_card, info_card, welcome_card
from bot.cards.views import HelpView, InfoView, WelcomeView

from .walk import all_text, executes, of_type, verbs

HOSTILE = "**bold** [x](http://evil) <script>"


def test_card_envelope() -> None:
    card = welcome_card(WelcomeView("Switchboard", registered=False))
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.5"
    assert "refresh" not in card


def test_welcome_offers_register_when_unregistered() -> None:
    card = welcome_card(WelcomeView("Switchboard", registered=False))
    assert verbs(card) == {"register"}
    (action,) = executes(card)
    assert action["title"] == "Register"
    assert action["data"] == {}
    assert action["fallback"] == {
        "type": "Action.Submit",
        "title": "Register",
        "data": {"verb": "register"},
        "style": "positive",
    }
    assert "help" in all_text(card)


def test_welcome_offers_unregister_when_registered() -> None:
    card = welcome_card(WelcomeView("Switchboard", registered=True))
    assert verbs(card) == {"unregister"}
    assert "registered" in all_text(card)


def test_welcome_escapes_the_app_name() -> None:
    text = all_text(welcome_card(WelcomeView(HOSTILE, registered=False)))
    assert "**bold**" not in text and "<script>" not in text
    assert r"\*\*bold\*\*" in text


def test_help_lists_every_command() -> None:
    card = help_card(HelpView("Switchboard"))
    (fact_set,) = of_type(card, "FactSet")
    commands = [fact["title"] for fact in fact_set["facts"]]
    assert commands == [
        "help",
        "register",
        "unregister",
        "status",
        "duty ‹profile›",
        "reset",
        "sessions \\[search\\]",
        "nar",
        "service ‹name› off|on",
    ]
    assert all(fact["value"] for fact in fact_set["facts"])
    assert not executes(card)


def test_info_card_shows_title_and_text_escaped() -> None:
    card = info_card(InfoView("Saved " + HOSTILE, "All " + HOSTILE))
    text = all_text(card)
    assert text.startswith("Saved \\*\\*bold")
    assert "All \\*\\*bold" in text
    assert "<" not in text
