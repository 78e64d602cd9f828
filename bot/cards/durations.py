"""Durations in words: 30 → "30 seconds", 65 → "1 minute 5 seconds", 7200 → "2 hours"."""

from __future__ import annotations

from datetime import timedelta

_UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1))


def in_words(duration: float | timedelta) -> str:
    """Round to whole seconds; show the largest unit and the next one when not zero."""
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else duration
    remaining = max(0, round(seconds))
    if remaining == 0:
        return "0 seconds"
    index = next(i for i, (_, size) in enumerate(_UNITS) if remaining >= size)
    parts = []
    for name, size in _UNITS[index : index + 2]:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count} {name}" + ("" if count == 1 else "s"))
    return " ".join(parts)
