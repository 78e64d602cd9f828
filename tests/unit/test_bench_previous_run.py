"""The bench report puts the /api/messages ratios of the run it replaces next to the new ones."""

from __future__ import annotations

import json
from pathlib import Path

from bench import report


def test_the_previous_ratios_are_read_before_latest_json_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "latest.json"
    path.write_text(json.dumps({"when": "2026-12-06 21:35", "echo_ratio": 18.2,
                                "raw_ratio": 0.57, "invite_p99_ms": 84}))
    previous = report.previous_run(path)
    assert previous == {"when": "2026-12-06 21:35", "echo_ratio": 18.2, "raw_ratio": 0.57}
    results = {"previous_run": previous}
    assert report._previous(results, "echo_ratio", "{:.1f}×") == \
        "; previous run (2026-12-06 21:35): 18.2×"
    assert report._previous(results, "raw_ratio", "{:.0%}") == \
        "; previous run (2026-12-06 21:35): 57%"


def test_no_previous_run_adds_nothing(tmp_path: Path) -> None:
    assert report.previous_run(tmp_path / "latest.json") == {}
    (tmp_path / "broken.json").write_text("{")
    assert report.previous_run(tmp_path / "broken.json") == {}
    assert report._previous({"previous_run": {"raw_ratio": None}}, "raw_ratio", "{:.0%}") == ""
