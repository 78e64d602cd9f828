"""The fleet phase's arithmetic and its part of bench/results: the busiest one-second window,
the headline over both stores, and a fleet-only run rewriting only its own section."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.connector import peak_per_window
from bench.report import FLEET_BEGIN, FLEET_END, fleet_headline, write_fleet
from bench.stats import summary_ms


def test_the_busiest_window_counts_calls_less_than_a_second_apart() -> None:
    assert peak_per_window([]) == 0
    assert peak_per_window([0.0, 0.5, 0.99]) == 3
    # The stand-in's rule: a call exactly one second earlier has left the window.
    assert peak_per_window([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert peak_per_window([0.0, 1.0, 2.0, 3.0]) == 1
    burst = [10 + i / 100 for i in range(60)]  # 60 calls inside 0.6 s
    assert peak_per_window([0.0, *burst, 20.0]) == 60


def store(agent_ms: list[float], customer_ms: list[float], *, peak: int = 40, http_429: int = 0,
          lost: int = 0, duplicated: int = 0) -> dict[str, Any]:
    agent = summary_ms([ms / 1000 for ms in agent_ms])
    customer = summary_ms([ms / 1000 for ms in customer_ms])
    return {"relay_agent_to_widget_p99_ms": agent["p99_ms"],
            "relay_customer_to_chatroom_p99_ms": customer["p99_ms"],
            "tenant_peak_per_s": peak, "http_429": http_429,
            "lost": {"customer_to_chatroom": lost, "agent_to_widget": 0},
            "duplicated": {"customer_to_chatroom": 0, "agent_to_widget": 0,
                           "invitations": duplicated}}


def test_the_headline_takes_the_worse_store_and_sums_the_counts() -> None:
    fleet = {"sqlite": store([5, 20], [8, 9], peak=48, http_429=2, lost=1),
             "cosmos": store([30, 180], [40, 60], peak=51, duplicated=3)}
    assert fleet_headline(fleet) == {
        "fleet_relay_p99_ms": 180.0, "fleet_tenant_peak_per_s": 51, "fleet_http_429": 2,
        "fleet_lost": 1, "fleet_duplicated": 3}


def test_a_way_without_a_single_sample_is_no_relay_figure() -> None:
    fleet = {"sqlite": store([5], [8]), "cosmos": store([], [40])}
    assert math.isnan(fleet_headline(fleet)["fleet_relay_p99_ms"])


def test_a_fleet_only_run_replaces_its_section_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "latest.json").write_text(json.dumps({"invite_p99_ms": 14.4, "fleet_lost": 9}))
    (tmp_path / "latest.md").write_text(
        f"# bench\n\nfull run\n\n{FLEET_BEGIN}\nold fleet\n{FLEET_END}\n\ntail\n")
    fleet = {"config": {"instances": 3}, "sqlite": {
        **store([5, 20], [8, 9]),
        **{key: summary_ms([0.01]) for key in (
            "relay_agent_to_widget", "relay_customer_to_chatroom",
            "relay_agent_to_widget_cross_instance", "relay_agent_to_widget_same_instance",
            "invitation")},
        "tenant_peak_accepted_per_s": 40, "http_429_by": {"tenant": 0}, "http_503": 0,
        "connected": 200, "chats": 200, "open_seconds": 9.0, "calls_per_s_in_window": 20.0,
        "server_cpu_share_in_window": [0.1, 0.1, 0.1], "errors": 0,
        "setup": {"agents": 210, "registered": 210, "seconds": 8.0, "calls": 420,
                  "peak_per_s": 50, "http_429": 0, "http_503": 0}}}

    write_fleet(fleet, tmp_path)

    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["invite_p99_ms"] == 14.4
    assert results["fleet_lost"] == 0
    assert results["fleet"]["sqlite"]["connected"] == 200
    text = (tmp_path / "latest.md").read_text()
    assert text.startswith("# bench\n\nfull run\n\n")
    assert text.endswith(f"{FLEET_END}\n\ntail\n")
    assert "old fleet" not in text
    assert text.count(FLEET_BEGIN) == 1
    assert "| Agent → widget" in text
