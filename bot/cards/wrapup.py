"""The wrap-up form: result, times, codes, tags, ACW, and Save / Extend ACW / End ACW."""

from __future__ import annotations

from bot.cards.budget import Card, within
from bot.cards.common import RESULT_LABELS, session_header, status_line
from bot.cards.dates import clock, readable
from bot.cards.durations import in_words
from bot.cards.elements import (
    adaptive_card,
    choice_set,
    execute,
    facts,
    open_url,
    show_card,
    text,
    text_input,
    typeahead,
)
from bot.cards.text import LINE, NAME, safe_url, shown, truncate
from bot.cards.verbs import InputId, Verb
from bot.cards.views import Choice, Timings, WrapUpView

MAX_CODES = 50
MAX_SUGGESTIONS = 15
MAX_TAG_LENGTH = 50
TAG_BYTES = 4_000
"""JSON bytes for the current tags, and again for the suggestions (values are never cut)."""
NEW_TAGS_LENGTH = 500


def timing_rows(timings: Timings) -> list[tuple[str, str]]:
    """Facts for the durations that happened: ringing, queue, connected, ACW."""
    named = (
        ("Ringing", timings.ring_seconds),
        ("In queue", timings.queue_seconds),
        ("Connected", timings.connected_seconds),
        ("After-call work", timings.acw_seconds),
    )
    return [(name, in_words(seconds)) for name, seconds in named if seconds is not None]


def _codes(choices: tuple[Choice, ...]) -> list[Choice]:
    return [Choice(c.value, truncate(c.title, NAME)) for c in choices[:MAX_CODES]]


def _tags(view: WrapUpView) -> tuple[list[str], list[str]]:
    """(choices, selected): the current tags, then suggestions Teams can show (at most 15).

    Tags are short labels: longer ones are cut to MAX_TAG_LENGTH (value and title).
    """
    current = within(dict.fromkeys(truncate(t, MAX_TAG_LENGTH) for t in view.tags), TAG_BYTES)
    offered = dict.fromkeys(truncate(t, MAX_TAG_LENGTH) for t in view.tag_suggestions)
    fresh = [t for t in offered if t not in current][:MAX_SUGGESTIONS]
    return current + within(fresh, TAG_BYTES), current


def wrapup_inputs(view: WrapUpView) -> list[Card | None]:
    """Codes and tags inputs, also shown on the accepted card during the session."""
    primary = secondary = tags = None
    if view.primary_codes:
        primary = choice_set(
            InputId.PRIMARY_CODE,
            "Primary code",
            _codes(view.primary_codes),
            value=view.primary_code,
            required=view.codes_required,
            error_message="Choose a primary code",
            placeholder="Choose a primary code",
        )
    if view.secondary_codes:
        secondary = choice_set(
            InputId.SECONDARY_CODE,
            "Secondary code",
            _codes(view.secondary_codes),
            value=view.secondary_code,
            placeholder="Optional",
        )
    choices, selected = _tags(view)
    if choices:  # an empty pick list is invalid; with no tags in the service yet, none to offer
        tags = typeahead(InputId.TAGS, "Tags", choices, selected)
    new_tags = text_input(
        InputId.NEW_TAGS,
        "New tags" if choices else "Tags",
        placeholder="comma-separated, e.g. refund, vip",
        max_length=NEW_TAGS_LENGTH,
    )
    return [primary, secondary, tags, new_tags]


def codes_and_tags(view: WrapUpView | None, data: dict[str, str]) -> Card | None:
    """Codes and tags during the session, behind a button (Save sends `data` too); saved once."""
    if view is None:
        return None
    return show_card("Codes and tags", wrapup_inputs(view),
                     [execute("Save", Verb.SAVE_WRAPUP, data, style="positive")])


def wrapup_card(view: WrapUpView) -> Card:
    """The form that concludes a session; Save sends the codes and tags."""
    header = view.header
    rows = [("Result", RESULT_LABELS[view.result]), ("Started", readable(view.started_at))]
    ids = {"session_id": header.session_id}
    acw = f"After-call work ends at {clock(view.acw_until)}" if view.acw_until else None
    context = safe_url(view.context_url)
    return adaptive_card(
        [
            session_header(header),
            status_line("📝 Wrap-up"),
            facts(rows + timing_rows(view.timings)),
            text(acw, color="warning") if acw else None,
            text(shown(view.error, LINE), color="attention", weight="bolder")
            if view.error
            else None,
            *wrapup_inputs(view),
        ],
        [
            execute("Save", Verb.SAVE_WRAPUP, ids, style="positive"),
            execute("Extend ACW", Verb.EXTEND_ACW, ids, with_inputs=False)
            if view.can_extend_acw
            else None,
            execute("End ACW", Verb.END_ACW, ids, with_inputs=False) if view.can_end_acw else None,
            open_url("Open context", context) if context else None,
        ],
    )
