"""The one backoff and the one Retry-After reader that the outbound sender, the web-request
outbox and the job runner share."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from bot.domain.retry import Backoff, parse_retry_after
from bot.services.jobs import JOB_BACKOFF
from bot.services.outbox import BACKOFF as WEBHOOK_BACKOFF
from bot.teams.outbound import RetryPolicy

WALL = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        (" 0.25 ", 0.25),
        ("-3", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        (formatdate(WALL + 7, usegmt=True), 7.0),
        (formatdate(WALL - 60, usegmt=True), 0.0),
        ("Wed, 21 Oct 2015 07:28:00", 0.0),  # no zone: taken as UTC, long past
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, WALL) == expected


def test_each_caller_keeps_its_schedule() -> None:
    outbound = RetryPolicy().backoff
    assert [outbound.bound(n) for n in (1, 2, 7, 8, 40)] == [0.5, 1.0, 30.0, 30.0, 30.0]
    assert [WEBHOOK_BACKOFF.bound(n) for n in (1, 2, 3, 4)] == [10.0, 40.0, 160.0, 640.0]
    assert [JOB_BACKOFF.bound(n) for n in (1, 2, 8, 9, 12)] == [2.0, 4.0, 256.0, 300.0, 300.0]


def test_wait_is_the_bound_times_a_draw_within_the_jitter() -> None:
    backoff = Backoff(first=10.0, factor=4.0, jitter=(0.75, 1.0))
    rng, same = random.Random(5), random.Random(5)
    waits = [backoff.wait(n, rng) for n in range(1, 6)]
    assert waits == [backoff.bound(n) * same.uniform(0.75, 1.0) for n in range(1, 6)]
    assert all(0.75 * backoff.bound(n) <= w <= backoff.bound(n) for n, w in enumerate(waits, 1))


def test_huge_attempt_counts_stay_finite() -> None:
    assert Backoff(first=1.0).bound(10_000) == 2.0 ** 62
    with pytest.raises(ValueError):
        Backoff(first=-1.0)
