"""The real app as `python -m bot` in a child process, on free ports, for end-to-end checks."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free port below the kernel's ephemeral range, so a later bind(0) (a test server,
    a client socket) cannot be handed the same port before the app binds it."""
    low, high = 20_000, 32_000
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        high = min(high, int(text[0]) - 1)
    except (OSError, ValueError, IndexError):
        pass
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket() as probe:
            try:
                probe.bind(("", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")


@dataclass
class AppProcess:
    process: subprocess.Popen[bytes]
    http_port: int
    smtp_port: int
    db_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@contextmanager
def app_process(tmp_path: Path, services: str, *, smtp: bool = False,
                timeout: float = 30.0) -> Iterator[AppProcess]:
    """Start the app with this services file (TOML text) and a fresh SQLite database; wait
    until its ports answer. A free port taken by someone else before the app binds it is
    tried again with other ports."""
    services_path = tmp_path / "services.toml"
    services_path.write_text(services, encoding="utf-8")
    db_path = tmp_path / "sb.db"
    for _attempt in range(3):
        http, mail = free_port(), (free_port() if smtp else 0)
        env = {**os.environ, "PORT": str(http), "SWITCHBOARD_DB": str(db_path),
               "SWITCHBOARD_SERVICES": str(services_path), "SWITCHBOARD_SMTP_PORT": str(mail),
               "SWITCHBOARD_LOG_LEVEL": "WARNING", "MicrosoftAppId": ""}
        process = subprocess.Popen([sys.executable, "-m", "bot"], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while process.poll() is None and not (_listening(http)
                                              and (not mail or _listening(mail))):
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.1)
        if process.poll() is None:
            break
        error = process.stderr.read().decode() if process.stderr else ""
        assert "address already in use" in error, error
    try:
        yield AppProcess(process, http, mail, db_path)
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()
