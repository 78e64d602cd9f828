"""Welcome, help and short information cards."""

from __future__ import annotations

from bot.cards.budget import Card
from bot.cards.elements import adaptive_card, execute, facts, text
from bot.cards.text import LINE, NAME, PARAGRAPH, plain, shown
from bot.cards.verbs import Verb
from bot.cards.views import HelpView, InfoView, WelcomeView

COMMANDS = (
    ("help", "Show this list of commands"),
    ("register", "Receive invitations for your services' tasks"),
    ("unregister", "Stop receiving invitations"),
    ("status", "Show your state, duty profile, RONA and open sessions"),
    ("duty <profile>", "Switch to another duty profile, e.g. duty Off Duty"),
    ("reset", "Reset RONA so that you receive tasks again"),
    ("sessions [search]", "Show My Sessions, optionally filtered by a search text"),
    ("nar", "Fill out pending not-available reasons"),
    ("service <name> off|on", "Stop or resume taking one service's tasks, the others unchanged"),
)


def welcome_card(view: WelcomeView) -> Card:
    """First card in the personal chat: what the bot does and Register or Unregister."""
    app = shown(view.app_name, NAME)
    if view.registered:
        state = "You are registered and receive invitation cards here."
        button = execute("Unregister", Verb.UNREGISTER)
    else:
        state = "Register to receive invitation cards for the services you are a member of."
        button = execute("Register", Verb.REGISTER, style="positive")
    return adaptive_card(
        [
            text(f"Welcome to {app}", weight="bolder", size="large"),
            text(
                f"{app} offers you chats, emails and tasks from your services' queues. "
                "Accept an invitation to talk with the customer, then wrap up with codes and tags."
            ),
            text(state, weight="bolder"),
            text(
                "Type **help** for all commands, **status** for your state "
                "and **sessions** for My Sessions.",
                subtle=True,
            ),
        ],
        [button],
    )


def help_card(view: HelpView) -> Card:
    """The list of commands with a one-line description each."""
    return adaptive_card(
        [
            text(f"{shown(view.app_name, NAME)} commands", weight="bolder", size="medium"),
            facts((plain(command), about) for command, about in COMMANDS),
        ]
    )


def info_card(view: InfoView) -> Card:
    """A short message: a title and a text."""
    return adaptive_card(
        [
            text(shown(view.title, LINE), weight="bolder", size="medium"),
            text(shown(view.text, PARAGRAPH)),
        ]
    )
