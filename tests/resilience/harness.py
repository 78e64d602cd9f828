"""The real server as a subprocess (`python -m bot`), and HTTP-only drivers for it.

Nothing here reaches into the server's memory: agents talk to it through /api/messages with
activities whose serviceUrl is a Bot Connector stand-in in the test process, customers through
the Interact API, and the test reads the SQLite file directly (read-only URI connections, so
the test never checkpoints or recovers the database behind the server's back).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.standins.connector import ConnectorStandin
from tests.support.cards import find_action
from tests.support.http import post_json
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
API = "/api/interact/v1"
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def services_file(directory: Path, *, ring_timeout: str = "5s", acw: str = "2s",
                  rona_reset: str = "10s", members: int = 3, extra: str = "") -> Path:
    """One service "sales" (website chat) whose members are a1..a<members>@example.com."""
    upns = ", ".join(f'"a{n}@example.com"' for n in range(1, members + 1))
    path = directory / "services.toml"
    path.write_text(f"""
[[service]]
id = "sales"
name = "Sales"
modalities = ["im", "email", "external"]
members = [{upns}]
[service.distribution]
mode = "direct"
ring_timeout = "{ring_timeout}"
rona_reset = "{rona_reset}"
[service.acw]
duration = "{acw}"
max_extension = "30s"
{extra}
""", encoding="utf-8")
    return path


# A service that stores conversation context keeps the transcript after the conclusion (until
# the 30-day purge), so a test can read from the database what was said.
KEEP_TRANSCRIPT = "[service.context]\nstore_data = true\n"


# Variables of bot/config.py ENV that must not leak from the developer's shell into a test.
_SCRUB = ("MicrosoftAppId", "MicrosoftAppPassword", "MicrosoftAppType", "MicrosoftAppTenantId",
          "SWITCHBOARD_", "COSMOS_")


def server_env(*, db: Path, services: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    # SMTP off: local mode would otherwise listen on the fixed port 2525 in every process.
    env.update(PORT=str(port), SWITCHBOARD_DB=str(db), SWITCHBOARD_SERVICES=str(services),
               SWITCHBOARD_LOG_LEVEL="INFO", SWITCHBOARD_SMTP_PORT="0", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def new_server(workdir: Path, *, name: str = "switchboard", env: dict[str, str] | None = None,
               **services: Any) -> ServerProcess:
    """A server (not started) on a new database in `workdir` and a free port, serving the
    services file `services_file(workdir, **services)` writes."""
    return ServerProcess(workdir, server_env(
        db=workdir / "switchboard.db", services=services_file(workdir, **services),
        port=free_port(), **(env or {})), name=name)


class ServerProcess:
    """`python -m bot` in its own process group, its output appended to one log file.

    `start()` + `await ready()`; `kill9()` kills the whole group with SIGKILL (no cleanup, no
    graceful shutdown: a crash); `start()` again runs a new process on the same port and
    database. `stop()` is idempotent and used at teardown.
    """

    def __init__(self, workdir: Path, env: dict[str, str], name: str = "switchboard") -> None:
        self.workdir = workdir
        self.env = env
        self.name = name
        self.port = int(env["PORT"])
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.lives = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.lives += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== life {self.lives}: python -m bot on port {self.port} =====\n"
                      .encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot"], cwd=REPO, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    async def ready(self, timeout: float = STARTUP_TIMEOUT) -> float:
        """Wait for /healthz (and /readyz) to answer 200; seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        async with aiohttp.ClientSession() as client:
            while True:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise AssertionError(f"{self.name} exited with {code} during start-up:\n"
                                         f"{self.log_tail()}")
                try:
                    async with client.get(f"{self.url}/healthz",
                                          timeout=aiohttp.ClientTimeout(total=1)) as health:
                        if health.status == 200:
                            async with client.get(f"{self.url}/readyz") as ready:
                                if ready.status == 200:
                                    return time.monotonic() - started
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} not healthy within {timeout}s:\n"
                                         f"{self.log_tail()}")
                await asyncio.sleep(0.05)

    def kill9(self) -> None:
        """A crash: SIGKILL to the process group, then reap."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill9()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = 20_000) -> str:
        text = self.log_text()
        return text[-chars:]

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines (other output, such as aiohttp's banner, is skipped)."""
        lines = []
        for raw in self.log_text().splitlines():
            if raw.startswith("{"):
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    continue
        return lines


Launch = Callable[..., ServerProcess]

SERVERS_KEY = pytest.StashKey[list[ServerProcess]]()


def attach(node: pytest.Item, server: ServerProcess) -> None:
    """Show this server's log in the report if the test (node) fails (see conftest.py)."""
    node.stash.setdefault(SERVERS_KEY, []).append(server)
"""The `launch` fixture: `launch(ring_timeout=..., acw=..., env=...)` starts a server."""


# -- the database, read from outside ---------------------------------------------------------

INFRASTRUCTURE_TABLES = frozenset({"fleet_instances", "fleet_sendlog", "changes",
                                   "sqlite_sequence"})


class Db:
    """Read-only views of the server's SQLite file (each call opens and closes a connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return list(conn.execute(sql, tuple(params)))
        finally:
            conn.close()

    def scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        found = self.rows(sql, params)
        return found[0][0] if found else None

    def events(self, name: str | None = None, *, task_id: str | None = None,
               session_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT seq, name, task_id, session_id, agent_id, data, at FROM events WHERE 1 = 1"
        params: list[Any] = []
        for column, value in (("name", name), ("task_id", task_id),
                              ("session_id", session_id)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        return [{"seq": r[0], "name": r[1], "task_id": r[2], "session_id": r[3],
                 "agent_id": r[4], "data": json.loads(r[5]), "at": r[6]}
                for r in self.rows(sql + " ORDER BY seq", params)]

    def count_events(self, name: str, **where: str) -> int:
        return len(self.events(name, **where))

    def sessions(self, task_id: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT id, task_id, agent_id, phase, card_id, chat_id, data, offered_at"
               " FROM sessions")
        params: tuple[Any, ...] = ()
        if task_id is not None:
            sql += " WHERE task_id = ?"
            params = (task_id,)
        found = []
        for r in self.rows(sql + " ORDER BY offered_at, id", params):
            data = json.loads(r[6])
            found.append({"id": r[0], "task_id": r[1], "agent_id": r[2], "phase": r[3],
                          "card_id": r[4], "chat_id": r[5], "result": data.get("result"),
                          "saved_at": data.get("saved_at"), "offered_at": r[7],
                          "data": data})
        return found

    def shown(self, task_id: str) -> list[dict[str, Any]]:
        """The task's sessions whose card Teams took (their card id is known); a website
        chat's id is its task's."""
        return [s for s in self.sessions(task_id) if s["card_id"]]

    def session(self, session_id: str) -> dict[str, Any]:
        [found] = [s for s in self.sessions() if s["id"] == session_id]
        return found

    def task_state(self, task_id: str) -> str:
        return str(self.scalar("SELECT state FROM tasks WHERE id = ?", (task_id,)))

    def timers(self) -> list[dict[str, Any]]:
        return [{"id": r[0], "kind": r[1], "ref": r[2], "due_at": r[3], "lease_until": r[4],
                 "attempts": r[5]}
                for r in self.rows("SELECT id, kind, ref, due_at, lease_until, attempts"
                                   " FROM timers ORDER BY due_at")]

    def jobs_pending(self) -> list[dict[str, Any]]:
        """Effect jobs (card sync, chat opening, relay) due now or running under a lease."""
        now = time.time()
        return [t for t in self.timers() if t["kind"] in ("sync_card", "open_chat", "relay")
                and (t["due_at"] <= now + 0.5 or t["lease_until"] is not None)]

    def messages(self, task_id: str) -> list[dict[str, Any]]:
        return [{"seq": r[0], "sender": r[1], "kind": r[2], "text": r[3]}
                for r in self.rows("SELECT seq, sender, kind, text FROM messages"
                                   " WHERE task_id = ? ORDER BY seq", (task_id,))]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table that holds the product's state: compare two snapshots to
        prove nothing changed. The fleet's own bookkeeping (heartbeats, send logs, the change
        feed) moves by itself and says nothing about what a request did."""
        tables = [r[0] for r in self.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if r[0] not in INFRASTRUCTURE_TABLES]
        # Sorted here: some tables are WITHOUT ROWID (no rowid to order by).
        return {t: sorted(self.rows(f'SELECT * FROM "{t}"'), key=repr) for t in tables}

    def integrity(self) -> list[str]:
        return [str(r[0]) for r in self.rows("PRAGMA integrity_check")]


# -- agents and customers over HTTP ----------------------------------------------------------

class Customer:
    """A website visitor using the Interact API."""

    def __init__(self, client: aiohttp.ClientSession, base_url: str) -> None:
        self.client = client
        self.base_url = base_url
        self.chat_id = ""
        self.token = ""

    async def open(self, text: str, name: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"service": "sales", "text": text}
        if name:
            body["customer"] = {"name": name}
        status, answer = await post_json(self.client, f"{self.base_url}{API}/chats", body)
        assert status == 201, (status, answer)
        self.chat_id, self.token = answer["chat_id"], answer["token"]
        return dict(answer)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def say(self, text: str) -> int:
        status, answer = await post_json(
            self.client, f"{self.base_url}{API}/chats/{self.chat_id}/messages", {"text": text},
            headers=self.auth)
        assert status == 202, (status, answer)
        return int(answer["seq"])

    async def leave(self) -> None:
        status, answer = await post_json(
            self.client, f"{self.base_url}{API}/chats/{self.chat_id}/end", {}, headers=self.auth)
        assert status == 200, (status, answer)


# -- what a card shows -----------------------------------------------------------------------

def card_text(card: dict[str, Any] | None) -> str:
    return json.dumps(card, ensure_ascii=False) if card is not None else ""


def card_stage(card: dict[str, Any] | None) -> str:
    """What an invitation card shows, judged from its buttons and words."""
    if card is None:
        return "none"
    text = card_text(card)
    if find_action(card, "accept") is not None:
        return "invitation"
    if find_action(card, "terminate") is not None:
        return "accepted"
    if find_action(card, "save_wrapup") is not None:
        return "wrapup"
    if "could not be created" in text:
        return "failed"
    if "Missed" in text:
        return "missed"
    if "Taken by another agent" in text:
        return "taken"
    if "Cancelled by customer" in text:
        return "cancelled"
    if "Declined" in text:
        return "declined"
    if "Concluded" in text:
        return "concluded"
    return "other"


def expected_stage(session: dict[str, Any]) -> str:
    """The stage the card of a session must show, from the session row."""
    if session["saved_at"]:
        return "concluded"
    phase, result = session["phase"], session["result"]
    if phase == "ringing":
        return "invitation"
    if phase == "connected":
        return "accepted"
    if phase == "acw" or result == "accepted":
        return "wrapup"
    return {"rona": "missed", "missed": "missed", "failed": "failed", "rescinded": "taken",
            "cancelled": "cancelled", "declined": "declined"}.get(result or "", "other")


STAGE_ORDER = ["invitation", "accepted", "wrapup", "concluded"]


async def quiet(db: Db, timeout: float = 15.0) -> None:
    """Wait until the server has no card/chat/relay job due or running under a lease.

    A crash while a job holds its lease delays that job by the lease (30 s) after the
    restart; the crash tests kill at quiet moments so their timing is predictable.
    """
    await eventually(lambda: not db.jobs_pending(), timeout=timeout)


def db_of(server: ServerProcess) -> Db:
    return Db(Path(server.env["SWITCHBOARD_DB"]))


def make_agent(n: int, server: ServerProcess | str, connector: ConnectorStandin,
               client: aiohttp.ClientSession) -> TeamsAgent:
    """Agent n of tests/support/teams.py against this server; `register()` waits for the
    bot's reply, which comes from a process of its own."""
    base = server if isinstance(server, str) else server.url
    return TeamsAgent.enrolled(n, connector, client, base, confirm_registration=True)


@dataclass
class ServerStage:
    """A server a whole test module shares, with a Bot Connector stand-in and an HTTP client."""

    server: ServerProcess
    db: Db
    connector: ConnectorStandin
    client: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.server.url


@contextlib.asynccontextmanager
async def staged(workdir: Path, **services: Any) -> AsyncIterator[ServerStage]:
    """A ready `new_server(workdir, **services)`, a connector stand-in and a client; the
    server is stopped at the end."""
    server = new_server(workdir, **services)
    server.start()
    try:
        await server.ready()
        async with ConnectorStandin() as connector, aiohttp.ClientSession() as client:
            yield ServerStage(server, db_of(server), connector, client)
    finally:
        server.stop()


async def registered(server: ServerProcess | str, connector: ConnectorStandin,
                     client: aiohttp.ClientSession, count: int = 1) -> list[TeamsAgent]:
    """Agents 1..count (`make_agent`), registered one after the other."""
    agents = [make_agent(n, server, connector, client) for n in range(1, count + 1)]
    for agent in agents:
        await agent.register()
    return agents


def make_customer(server: ServerProcess | str, client: aiohttp.ClientSession) -> Customer:
    return Customer(client, server if isinstance(server, str) else server.url)


async def accept_into_chat(agent: TeamsAgent, offer: dict[str, Any],
                           topic: str = "Sales ¦ Jane Doe") -> dict[str, Any]:
    """The agent accepts a shown offer (a `Db.sessions` row) and sees the chat's header card;
    the card Accept answered with."""
    accepted = await agent.click("accept", {"session_id": offer["id"]},
                                 reply_to=offer["card_id"])
    await eventually(lambda: [a for a in agent.activities() if topic in card_text(a)])
    return accepted
