"""The database is locked mid-run by another process, then released.

Another connection takes `BEGIN EXCLUSIVE` on the server's SQLite file for ~12 s (what a
backup tool, a stuck second instance or an operator's sqlite3 shell does). Requests must get
clear errors (503 with a message, never 500), /readyz must say the store is not usable, nothing
may be corrupted, and everything works again once the lock is gone.

Why a lock and not a read-only file: the suite runs as root, whom file permissions do not stop,
and a running SQLite connection keeps writing through the descriptors it opened at start-up
whatever the mode of the files becomes; chmod mid-run changes nothing the server can notice.

One lock window is observed once (module fixture) and judged by several tests, so each known
bug is its own strict xfail and the rest still has to pass.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests import teams_activities as act
from tests.resilience.harness import (
    API,
    KEEP_TRANSCRIPT,
    Db,
    ServerProcess,
    accept_into_chat,
    attach,
    card_stage,
    make_customer,
    new_server,
    quiet,
    registered,
)
from tests.standins.connector import ConnectorStandin
from tests.support.http import post_json
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually

LOCK_SECONDS = 8.0
READYZ_BUDGET = 4.0
WRITE_BUDGET = 4.0
CREATE_BUDGET = 6.5  # the store's busy_timeout is 5 s: a clear answer must not take longer


@dataclass
class Observed:
    what: str
    status: int | str  # HTTP status, or "timeout" when no answer came within the budget
    seconds: float
    body: Any = None


@dataclass
class LockRun:
    server: ServerProcess
    db: Db
    session_id: str = ""
    chat_id: str = ""
    before: list[Observed] = field(default_factory=list)
    locked_readyz: Observed | None = None
    locked_writes: list[Observed] = field(default_factory=list)
    locked_create: Observed | None = None
    after_readyz: list[Observed] = field(default_factory=list)
    after: list[Observed] = field(default_factory=list)
    card_after: str = ""

    def everything(self) -> list[Observed]:
        locked = [o for o in (self.locked_readyz, self.locked_create) if o is not None]
        return [*self.before, *locked, *self.locked_writes, *self.after_readyz, *self.after]


async def _observe(what: str, call: Any, budget: float) -> Observed:
    started = time.monotonic()
    try:
        status, body = await asyncio.wait_for(call, timeout=budget)
    except TimeoutError:
        return Observed(what, "timeout", time.monotonic() - started)
    return Observed(what, status, time.monotonic() - started, body)


async def _scenario(run: LockRun) -> None:
    server, db = run.server, run.db
    await server.ready()
    async with ConnectorStandin() as connector, aiohttp.ClientSession() as client:
        [agent] = await registered(server, connector, client)
        jane = make_customer(server, client)
        await jane.open("Hi", name="Jane Doe")
        run.chat_id = jane.chat_id
        [offer] = await eventually(lambda: db.shown(jane.chat_id))
        run.session_id = offer["id"]
        await accept_into_chat(agent, offer)
        await quiet(db)
        run.before.append(await _observe("readyz", post_json(
            client, f"{server.url}/readyz", method="GET"), READYZ_BUDGET))

        # -- the lock -----------------------------------------------------------------------
        holder = sqlite3.connect(db.path, isolation_level=None, timeout=10)
        holder.execute("BEGIN EXCLUSIVE")
        released = False
        try:
            locked_at = time.monotonic()
            run.locked_readyz = await _observe("readyz", post_json(
                client, f"{server.url}/readyz", method="GET"), READYZ_BUDGET)
            message = _observe("customer message", post_json(
                client, f"{server.url}{API}/chats/{jane.chat_id}/messages",
                {"text": "during the lock"}, headers=jane.auth), WRITE_BUDGET)
            terminate = _observe("agent terminate", agent.post(_invoke(
                agent, "terminate", {"session_id": offer["id"]}, offer["card_id"])),
                WRITE_BUDGET)
            run.locked_writes = list(await asyncio.gather(message, terminate))
            # A new chat: its unit of work starts with a write, not a read (see the xfail).
            run.locked_create = await _observe("new chat", post_json(
                client, f"{server.url}{API}/chats",
                {"service": "sales", "text": "Hello?", "customer": {"name": "Locked Out"}}),
                CREATE_BUDGET)
            await asyncio.sleep(max(0.0, LOCK_SECONDS - (time.monotonic() - locked_at)))
            holder.execute("ROLLBACK")
            released = True
        finally:
            if not released:
                holder.execute("ROLLBACK")
            holder.close()

        # -- after ----------------------------------------------------------------------------
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            seen = await _observe("readyz", post_json(
                client, f"{server.url}/readyz", method="GET", timeout=30), 30)
            run.after_readyz.append(seen)
            if seen.status == 200:
                break
            await asyncio.sleep(0.2)
        run.after.append(await _observe("customer message", post_json(
            client, f"{server.url}{API}/chats/{jane.chat_id}/messages",
            {"text": "after the lock"}, headers=jane.auth), 30))
        if db.session(offer["id"])["phase"] == "connected":
            run.after.append(await _observe("agent terminate", agent.post(_invoke(
                agent, "terminate", {"session_id": offer["id"]}, offer["card_id"])), 30))
        await eventually(lambda: db.session(offer["id"])["phase"] == "ended", timeout=30)
        await quiet(db, timeout=30)
        run.card_after = card_stage(agent.card(offer["card_id"]))


def _invoke(agent: TeamsAgent, verb: str, data: dict[str, Any], reply_to: str) -> dict[str, Any]:
    return act.card_action(agent.connector.service_url, agent.conversation_id, agent.user_id,
                           agent.name, verb, data, reply_to=reply_to)


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("locked")
    server = new_server(workdir, ring_timeout="5s", acw="2s", members=1, extra=KEEP_TRANSCRIPT)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _show_log(request: pytest.FixtureRequest, locked_server: ServerProcess) -> None:
    attach(request.node, locked_server)


@pytest.fixture(scope="module")
def locked_run(locked_server: ServerProcess) -> LockRun:
    run = LockRun(locked_server, Db(Path(locked_server.env["SWITCHBOARD_DB"])))
    asyncio.run(_scenario(run))
    return run


def _describe(observed: list[Observed]) -> str:
    return "; ".join(f"{o.what}: {o.status} after {o.seconds:.1f}s" for o in observed)


def test_nothing_answers_500_and_errors_carry_a_message(locked_run: LockRun) -> None:
    for seen in locked_run.everything():
        assert seen.status != 500, _describe(locked_run.everything())
        if isinstance(seen.status, int) and seen.status >= 400:
            assert isinstance(seen.body, dict) and (seen.body.get("message")
                                                    or seen.body.get("error")), seen


def test_writes_against_a_locked_database_get_a_prompt_503_with_a_message(
        locked_run: LockRun) -> None:
    writes = locked_run.locked_writes
    assert [w.status for w in writes] == [503, 503], _describe(writes)
    for write in writes:
        assert write.seconds < 2.0, _describe(writes)
        assert isinstance(write.body, dict) and (write.body.get("message")
                                                 or write.body.get("error"))


def test_a_new_chat_against_a_locked_database_gets_a_503_within_the_busy_timeout(
        locked_run: LockRun) -> None:
    create = locked_run.locked_create
    assert create is not None
    assert create.status == 503, _describe([create])
    assert isinstance(create.body, dict) and create.body.get("error")


def test_readyz_says_503_while_the_database_is_locked(locked_run: LockRun) -> None:
    seen = locked_run.locked_readyz
    assert seen is not None
    assert seen.status == 503, _describe([seen])
    assert isinstance(seen.body, dict) and seen.body.get("message")


def test_before_the_lock_the_app_was_ready(locked_run: LockRun) -> None:
    assert [o.status for o in locked_run.before] == [200]


def test_the_app_recovers_once_the_lock_is_gone(locked_run: LockRun) -> None:
    readyz = locked_run.after_readyz
    assert readyz and readyz[-1].status == 200, _describe(readyz)
    assert readyz[-1].seconds < 2.0, "ready again promptly once released"
    message = locked_run.after[0]
    assert (message.what, message.status) == ("customer message", 202), _describe(
        locked_run.after)
    # The terminate sent during the lock either failed cleanly (and was sent again after) or
    # went through late; either way the session ended once and its card followed.
    for later in locked_run.after[1:]:
        assert (later.what, later.status) == ("agent terminate", 200), _describe([later])
    assert locked_run.card_after == "wrapup"


def test_nothing_is_corrupted_or_doubled(locked_run: LockRun) -> None:
    db, session_id, chat_id = locked_run.db, locked_run.session_id, locked_run.chat_id
    assert db.integrity() == ["ok"]
    messages = db.messages(chat_id)
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    customer = [m["text"] for m in messages if m["sender"] == "customer"]
    # The locked write either failed cleanly or went through once, never twice.
    assert customer in (["Hi", "after the lock"], ["Hi", "during the lock", "after the lock"])
    during = next(o for o in locked_run.locked_writes if o.what == "customer message")
    if during.status == 503:
        assert "during the lock" not in customer
    # The chat asked for during the lock exists at most once (if the server kept trying after
    # the client gave up), and not at all if it was refused.
    ghosts = db.scalar("SELECT COUNT(*) FROM tasks WHERE data LIKE '%Locked Out%'")
    assert ghosts <= (0 if locked_run.locked_create and locked_run.locked_create.status == 503
                      else 1)
    assert db.count_events("session.terminated", session_id=session_id) == 1
    assert db.count_events("acw.ended", session_id=session_id) == 1
    assert db.task_state(chat_id) == "done"
    assert not [t for t in db.timers() if t["lease_until"] is not None]
