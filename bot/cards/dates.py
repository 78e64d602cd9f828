"""Datetimes for people, always in UTC and independent of the process locale."""

from __future__ import annotations

from datetime import UTC, datetime

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _utc(moment: datetime) -> datetime:
    """Naive datetimes are taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def clock(moment: datetime) -> str:
    """Time of day, e.g. "14:05:09 UTC"."""
    return f"{_utc(moment):%H:%M:%S} UTC"


def readable(moment: datetime) -> str:
    """Date and time, e.g. "Fri 21 Nov 2025, 14:05 UTC"."""
    utc = _utc(moment)
    day, month = _DAYS[utc.weekday()], _MONTHS[utc.month - 1]
    return f"{day} {utc.day} {month} {utc.year}, {utc:%H:%M} UTC"
