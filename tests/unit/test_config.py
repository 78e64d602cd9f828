"""Settings and the services file: good files load, bad ones stop start-up with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import DEMO_SERVICES, ConfigError, load_catalog, load_settings
from bot.domain.durations import parse_duration
from bot.domain.service import DistributionMode, Modality

GOOD = """
[[service]]
id = "sales"
name = "Sales"
modalities = ["im", "email"]
members = ["alexw@example.com"]
[service.distribution]
mode = "broadcast"
ring_timeout = "45s"
rona_reset = "1h30m"
[service.acw]
duration = "0s"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "services.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_demo_file_and_a_small_file_load(tmp_path: Path) -> None:
    demo = load_catalog(DEMO_SERVICES)
    assert [s.name for s in demo.services.values()] == ["Sales", "IT Helpdesk"]
    sales = load_catalog(write(tmp_path, GOOD)).service("sales")
    assert sales.modalities == (Modality.IM, Modality.EMAIL)
    assert sales.distribution.mode is DistributionMode.BROADCAST
    assert sales.distribution.rona_reset == timedelta(hours=1, minutes=30)
    assert not sales.acw.enabled
    assert sales.has_member("AlexW@Example.com", None)


@pytest.mark.parametrize(("text", "message"), [
    (GOOD.replace('["im", "email"]', '["im", "fax"]'),
     "service 'sales'.modalities: unknown modality 'fax'"),
    (GOOD.replace('"45s"', '"-5s"'), "ring_timeout: duration '-5s' is negative"),
    (GOOD + GOOD, "service[1].id: duplicate id 'sales'"),
    (GOOD.replace('"1h30m"', '"5s"'), "rona_reset: must be at least 10s"),
    (GOOD.replace('"45s"', '"soon"'), "ring_timeout: duration 'soon' is not a number"),
    (GOOD.replace('"broadcast"', '"random"'), "mode: 'random' is not direct or broadcast"),
    (GOOD.replace('id = "sales"', 'id = "Sales Team"'), "is not a slug"),
    ("[[service]\nid=", "not valid TOML"),
    ("", "declare at least one [[service]]"),
])
def test_bad_files_name_the_file_key_and_problem(tmp_path: Path, text: str,
                                                 message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_catalog(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration("0s") == timedelta(0)
    for bad in ("", "10", "5x", "-1m", "1m 2"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.parametrize(("env", "message"), [
    ({"PORT": "http"}, "environment PORT"),
    ({"SWITCHBOARD_LOG_LEVEL": "LOUD"}, "environment SWITCHBOARD_LOG_LEVEL"),
    ({"SWITCHBOARD_STORE": "redis"}, "environment SWITCHBOARD_STORE"),
    ({"SWITCHBOARD_STORE": "cosmos"}, "environment COSMOS_ENDPOINT"),
    ({"MicrosoftAppType": "Anything"}, "environment MicrosoftAppType"),
    ({"SWITCHBOARD_SERVICES": "/nonexistent/services.toml"}, "cannot read the services file"),
])
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_a_bad_services_file_stops_start_up_with_a_message(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('"45s"', '"-5s"'))
    env = {**os.environ, "SWITCHBOARD_SERVICES": str(path), "PORT": "39781",
           "SWITCHBOARD_DB": str(tmp_path / "sb.db")}
    done = subprocess.run([sys.executable, "-m", "bot"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert f"{path}: service 'sales'.distribution.ring_timeout" in done.stderr
    assert "negative" in done.stderr
