"""Latency samples by series, percentiles, and the errors the run met."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Any


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(values: list[float]) -> dict[str, Any]:
    """p50/p95/p99/max in milliseconds of samples in seconds."""
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p95_ms": round(percentile(values, 95) * 1000, 2),
        "p99_ms": round(percentile(values, 99) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2) if values else math.nan,
    }


class Samples:
    """Named series of latencies (seconds), e.g. ``invite@50`` or ``relay@200``."""

    def __init__(self) -> None:
        self.series: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.error_count = 0
        self.error_kinds: Counter[str] = Counter()  # messages with the numbers taken out

    def add(self, name: str, seconds: float) -> None:
        self.series[name].append(seconds)

    def error(self, message: str) -> None:
        self.error_count += 1
        self.error_kinds[re.sub(r"\d+", "N", message)[:120]] += 1
        if len(self.errors) < 20:  # the first few say what went wrong; the count says how often
            self.errors.append(message[:300])

    def summary(self, name: str) -> dict[str, Any]:
        return summary_ms(self.series.get(name, []))
