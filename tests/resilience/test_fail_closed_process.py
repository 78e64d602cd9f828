"""`python -m bot` without an app id: loopback only, a loud warning, or no start at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.resilience.harness import (
    REPO,
    free_port,
    new_server,
    server_env,
    services_file,
)


def listening_addresses(port: int) -> set[str]:
    """The local addresses of TCP sockets listening on `port` (from /proc/net/tcp)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # LISTEN
                found.add(address)
    return found


async def test_local_mode_listens_on_loopback_only_and_says_auth_is_off(
        tmp_path: Path) -> None:
    server = new_server(tmp_path)
    server.start()
    try:
        await server.ready()
        assert listening_addresses(server.port) == {"0100007F"}  # 127.0.0.1
        warnings = [line for line in server.log_lines() if "LOCAL MODE" in line.get("msg", "")]
        assert warnings and warnings[0]["level"] == "WARNING"
        assert "NOT authenticated" in warnings[0]["msg"]
    finally:
        server.stop()


def test_local_mode_refused_means_no_start(tmp_path: Path) -> None:
    env = server_env(db=tmp_path / "sb.db", services=services_file(tmp_path),
                     port=free_port(), SWITCHBOARD_LOCAL_MODE="0")
    result = subprocess.run([sys.executable, "-m", "bot"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "refuses local mode" in result.stderr
