"""Durations in words and UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.cards import in_words
from bot.cards.dates import clock, readable


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 seconds"),
        (-5, "0 seconds"),
        (0.4, "0 seconds"),
        (1, "1 second"),
        (29.6, "30 seconds"),
        (30, "30 seconds"),
        (60, "1 minute"),
        (65, "1 minute 5 seconds"),
        (125, "2 minutes 5 seconds"),
        (3_600, "1 hour"),
        (3_725, "1 hour 2 minutes"),
        (3_601, "1 hour"),
        (7_200, "2 hours"),
        (90_061, "1 day 1 hour"),
        (172_800, "2 days"),
    ],
)
def test_in_words(seconds: float, words: str) -> None:
    assert in_words(seconds) == words


def test_in_words_takes_timedelta() -> None:
    assert in_words(timedelta(minutes=1, seconds=5)) == "1 minute 5 seconds"


def test_clock_and_readable_are_utc() -> None:
    moment = datetime(2025, 11, 21, 15, 5, 9, tzinfo=timezone(timedelta(hours=1)))
    assert clock(moment) == "14:05:09 UTC"
    assert readable(moment) == "Fri 21 Nov 2025, 14:05 UTC"
    assert readable(datetime(2026, 1, 4, 0, 0)) == "Sun 4 Jan 2026, 00:00 UTC"  # naive = UTC
    assert clock(datetime(2026, 1, 4, 23, 59, 59, tzinfo=UTC)) == "23:59:59 UTC"
