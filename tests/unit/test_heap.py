"""The collector settings python -m bot applies once it has started (checked in a fresh process:
they are process-wide)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc
from bot import heap
before = gc.get_freeze_count()
heap.settle()
print(before, gc.get_freeze_count() > 1000, gc.get_threshold()[0] == heap.YOUNG_THRESHOLD)
"""


def test_settle_freezes_what_exists_and_collects_the_young_less_often() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out == ["0", "True", "True"]

