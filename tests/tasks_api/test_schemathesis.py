"""Schemathesis against the running app's /api/openapi.json: no 5xx, every answer as documented.

The app runs as `python -m bot` with an API key for one service; schemathesis (examples,
coverage, fuzzing and stateful phases, bounded in time) sends what the document allows and
much that it does not, with that key.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app_process import app_process

KEY = "schemathesis-key-0123456789abcdefghijkl"
SERVICES = f"""
[[service]]
id = "sales"
name = "Sales"
modalities = ["im", "email", "external"]
members = ["a1@example.com"]
email = "sales@example.com"
[service.external]
max_open = 20

[[api_key]]
name = "fuzz"
sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"
services = ["sales"]
scopes = ["tasks", "reporting", "privacy"]
"""
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance")
# Interact's WebSocket route answers a plain GET (no Upgrade) with aiohttp's text/plain 400,
# not the documented JSON: reported to the Interact owners; left out here until it is fixed.
EXCLUDE = r"/ws$"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("schemathesis") is None,
                                reason="schemathesis is not installed")


def test_no_server_error_and_no_answer_off_the_document(tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    command = [str(st)] if st.exists() else [sys.executable, "-m", "schemathesis.cli"]
    with app_process(tmp_path, SERVICES) as app:
        done = subprocess.run(
            [*command, "run", f"{app.url}/api/openapi.json", "--checks", CHECKS,
             "--exclude-path-regex", EXCLUDE, "--header", f"Authorization: Bearer {KEY}",
             "--max-examples", "8", "--seed", "20261102", "--max-time", "40",
             "--workers", "1", "--request-timeout", "10", "--no-shrink",
             "--suppress-health-check", "all", "--warnings", "off"],
            capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
        assert app.process.poll() is None, "the app died during the run"
    report = done.stdout[-6000:] + done.stderr[-2000:]
    assert done.returncode == 0, report
    # The task API's four, privacy's two, Interact's four, the reporting export's two and the
    # status route.
    assert "Tested: 13" in done.stdout, report
    # The key got through: the fuzzer created external tasks, not only 4xx answers.
    database = sqlite3.connect(app.db_path)
    created = database.execute("SELECT COUNT(*) FROM tasks WHERE json_extract(data, "
                               "'$.channel.kind') = 'external'").fetchone()[0]
    database.close()
    assert created > 0
