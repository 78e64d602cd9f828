"""When the update of a card an agent clicked falls due (bot.domain.timers.settled)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.timers import CARD_SETTLE, settled


@pytest.mark.parametrize("micros", [0, 1, 250_000, 999_999])
def test_the_update_falls_due_on_the_first_whole_second_after_the_settle(micros: int) -> None:
    now = datetime(2026, 12, 7, 9, 30, 15, micros, tzinfo=UTC)
    due = settled(now)
    assert due.microsecond == 0
    assert now + CARD_SETTLE <= due < now + CARD_SETTLE + timedelta(seconds=1)


def test_clicks_within_one_second_share_their_due_time() -> None:
    first = datetime(2026, 12, 7, 9, 30, 15, 100_000, tzinfo=UTC)
    assert settled(first) == settled(first + timedelta(milliseconds=850))
    assert settled(first + timedelta(milliseconds=950)) == settled(first) + timedelta(seconds=1)
