"""`python -m bot` starts with one JSON line saying what it runs (no secrets), then a JSON
"listening" line instead of aiohttp's "Running on" banner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.app_process import ROOT, free_port

SECRET = "not-a-real-secret-but-one-all-the-same"


def test_startup_writes_json_lines_only(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "SWITCHBOARD_DB": str(tmp_path / "sb.db"),
           "SWITCHBOARD_LOG_LEVEL": "INFO", "SWITCHBOARD_SMTP_PORT": "0",
           "MicrosoftAppId": "", "MicrosoftAppPassword": SECRET,
           "OTEL_EXPORTER_OTLP_ENDPOINT": "", "APPLICATIONINSIGHTS_CONNECTION_STRING": ""}
    process = subprocess.Popen([sys.executable, "-m", "bot"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if '"listening"' in line:
                break
    finally:
        process.kill()
        process.wait(timeout=10)
    entries = [json.loads(line) for line in lines]  # every line is JSON
    assert "Running on" not in "".join(lines) and SECRET not in "".join(lines)
    [started] = [e for e in entries if e["msg"] == "switchboard started"]
    assert started["store"] == "sqlite" and started["version"]
    assert started["local_mode"] is True and started["teams_auth"] is False
    assert started["telemetry"] == "off" and started["services"]
    assert entries[-1]["msg"] == "listening" and entries[-1]["port"] == port
