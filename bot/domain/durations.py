"""Parse and format the duration strings of the services file ("30s", "10m", "1h", "7d")."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Turn "1h30m", "45s" or "0s" into a timedelta; raise ValueError with the reason otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string like \"30s\", got {text!r}")
    cleaned = text.strip().lower()
    if cleaned.startswith("-"):
        raise ValueError(f"duration {text!r} is negative")
    pos = 0
    total = 0
    for match in _PART.finditer(cleaned):
        if cleaned[pos : match.start()].strip():
            break
        total += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos == 0 or cleaned[pos:].strip():
        raise ValueError(f"duration {text!r} is not a number followed by s, m, h or d")
    return timedelta(seconds=total)
