"""The waits between attempts: one jittered exponential backoff and one Retry-After reader."""

from __future__ import annotations

import email.utils
import math
import random
from dataclasses import dataclass
from datetime import UTC


@dataclass(frozen=True, slots=True)
class Backoff:
    """After the n-th failed attempt wait `first * factor ** (n - 1)`, at most `cap` seconds,
    times a random draw from `jitter` (0 to 1: "full jitter"; 0.75 to 1: at most 25 % less)."""

    first: float
    factor: float = 2.0
    cap: float = math.inf
    jitter: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if self.first < 0 or self.cap < 0:
            raise ValueError("backoff bounds must not be negative")

    def bound(self, failures: int) -> float:
        """The longest wait after `failures` failed attempts (1-based)."""
        return min(self.cap, self.first * self.factor ** min(max(failures - 1, 0), 62))

    def wait(self, failures: int, rng: random.Random | None = None) -> float:
        """A wait in seconds after `failures` failed attempts."""
        low, high = self.jitter
        draw = random.uniform(low, high) if rng is None else rng.uniform(low, high)
        return self.bound(failures) * draw


def parse_retry_after(value: str | None, wall_now: float) -> float | None:
    """Seconds to wait from a Retry-After value at `wall_now` (Unix seconds): delta-seconds
    (fractions accepted, a negative one is 0) or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - wall_now)
