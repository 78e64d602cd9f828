"""Input the hostile-user review found answered with a 500: each is a 4xx with a message now.

One server (`python -m bot`, local mode) with a service that takes website chats and external
tasks (an API key), one registered agent and a connected chat. Every request is checked for
its status and message, and that no table changed (tests/resilience/test_hostile_input.py has
the rest of the hostile input).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests import teams_activities as act
from tests.resilience.harness import (
    API,
    Customer,
    ServerStage,
    attach,
    make_customer,
    quiet,
    registered,
    staged,
)
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "bad-input-test-key"
SURROGATE = "\\ud800"  # a lone surrogate, as JSON spells it: no UTF-8 can carry it


@dataclass
class Stage(ServerStage):
    agent: TeamsAgent
    jane: Customer


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stage]:
    workdir: Path = tmp_path_factory.mktemp("bad-input")
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    extra = f'[[api_key]]\nname = "crm"\nsha256 = "{digest}"\nservices = ["sales"]\n'
    async with staged(workdir, ring_timeout="10m", members=1, extra=extra) as base:
        [agent] = await registered(base.server, base.connector, base.client)
        jane = make_customer(base.server, base.client)
        await jane.open("Hi", name="Jane Doe")
        [offer] = await eventually(lambda: base.db.shown(jane.chat_id))
        await agent.click("accept", {"session_id": offer["id"]}, reply_to=offer["card_id"])
        await quiet(base.db)
        yield Stage(**vars(base), agent=agent, jane=jane)


@pytest.fixture(autouse=True)
def _show_log(request: pytest.FixtureRequest, stage: Stage) -> None:
    attach(request.node, stage.server)


async def raw(stage: Stage, method: str, path: str, body: bytes,
              headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """Send bytes as they are (a client would re-encode a lone surrogate or refuse it)."""
    async with stage.client.request(
            method, f"{stage.url}{path}", data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=aiohttp.ClientTimeout(total=30)) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


def message_of(body: Any) -> str:
    if isinstance(body, dict):
        found = body.get("message") or body.get("error")
        return found if isinstance(found, str) else json.dumps(found or "")
    return str(body or "")


async def refused(stage: Stage, case: str, method: str, path: str, body: bytes,
                  expected: set[int], headers: dict[str, str] | None = None) -> None:
    before = stage.db.snapshot()
    status, answer = await raw(stage, method, path, body, headers)
    await quiet(stage.db)
    assert status in expected, (case, status, str(answer)[:300])
    assert message_of(answer).strip(), (case, "an error without a message", answer)
    changed = [t for t in before if before[t] != stage.db.snapshot().get(t)]
    assert not changed, (case, f"tables changed: {changed}")


def with_surrogate(template: dict[str, Any], path: tuple[str, ...]) -> bytes:
    """`template` as JSON with the string at `path` (keys; the last may be a dict key to
    replace by a lone surrogate itself) holding a lone surrogate."""
    marker = "SURROGATE-HERE"
    body = json.loads(json.dumps(template))
    node = body
    for key in path[:-1]:
        node = node.setdefault(key, {})
    last = path[-1]
    if last == "<key>":
        node[marker] = "x"
    else:
        node[last] = f"a{marker}b"
    return json.dumps(body).replace(marker, SURROGATE).encode()


async def test_lone_surrogates_in_any_text_field_are_a_400(stage: Stage) -> None:
    chat = {"service": "sales", "text": "hi", "customer": {"name": "Jo"}}
    task = {"service": "sales", "title": "Call back", "customer": {"name": "Jo"},
            "context": {"TicketId": "1"}}
    key = {"Authorization": f"Bearer {KEY}"}
    svc, agent = stage.connector.service_url, stage.agent
    teams = act.message(svc, agent.conversation_id, agent.user_id, agent.name, "hello",
                        aad=agent.aad)
    cases: list[tuple[str, str, str, bytes, dict[str, str] | None]] = [
        ("chat text", "POST", f"{API}/chats", with_surrogate(chat, ("text",)), None),
        ("chat customer name", "POST", f"{API}/chats",
         with_surrogate(chat, ("customer", "name")), None),
        ("chat customer email", "POST", f"{API}/chats",
         with_surrogate(chat, ("customer", "email")), None),
        ("chat customer phone", "POST", f"{API}/chats",
         with_surrogate(chat, ("customer", "phone")), None),
        ("chat param value", "POST", f"{API}/chats",
         with_surrogate(chat, ("customer", "params", "Ticket")), None),
        ("chat param name", "POST", f"{API}/chats",
         with_surrogate(chat, ("customer", "params", "<key>")), None),
        ("chat message", "POST", f"{API}/chats/{stage.jane.chat_id}/messages",
         with_surrogate({"text": "x"}, ("text",)), stage.jane.auth),
        ("task title", "POST", "/api/v1/tasks", with_surrogate(task, ("title",)), key),
        ("task description", "POST", "/api/v1/tasks",
         with_surrogate(task, ("description",)), key),
        ("task customer name", "POST", "/api/v1/tasks",
         with_surrogate(task, ("customer", "name")), key),
        ("task context value", "POST", "/api/v1/tasks",
         with_surrogate(task, ("context", "TicketId")), key),
        ("teams message text", "POST", "/api/messages", with_surrogate(teams, ("text",)), None),
        ("teams sender name", "POST", "/api/messages",
         with_surrogate(teams, ("from", "name")), None),
    ]
    for case, method, path, body, headers in cases:
        await refused(stage, case, method, path, body, {400}, headers)


async def test_numbers_of_thousands_of_digits_are_a_4xx(stage: Stage) -> None:
    key = {"Authorization": f"Bearer {KEY}"}
    huge = "1" + "0" * 3000  # parses (under Python's 4,300-digit limit), fits nothing
    body = b'{"service": "sales", "title": "x", "priority": ' + huge.encode() + b"}"
    await refused(stage, "task priority", "POST", "/api/v1/tasks", body, {400, 422}, key)


async def test_deep_nesting_in_the_task_api_is_a_400(stage: Stage) -> None:
    key = {"Authorization": f"Bearer {KEY}"}
    await refused(stage, "nested task body", "POST", "/api/v1/tasks",
                  b"[" * 30_000 + b"]" * 30_000, {400}, key)


async def test_members_added_with_null_is_a_400(stage: Stage) -> None:
    agent = stage.agent
    update = act.installation(stage.connector.service_url, agent.conversation_id,
                              agent.user_id, agent.name, agent.aad)
    update.update(type="conversationUpdate", membersAdded=[None])
    await refused(stage, "membersAdded [null]", "POST", "/api/messages",
                  json.dumps(update).encode(), {400})


async def test_a_service_url_that_is_not_a_plain_http_url_is_refused_at_once(
        stage: Stage) -> None:
    agent = stage.agent
    port = stage.connector.service_url.split(":")[2].split("/")[0]
    for service_url in ("file:///etc/passwd", f"http://user:pass@127.0.0.1:{port}/",
                        "javascript:alert(1)", "http://", "ftp://127.0.0.1/"):
        activity = act.message(service_url, agent.conversation_id, agent.user_id, agent.name,
                               "help", aad=agent.aad)
        started = time.monotonic()
        await refused(stage, f"serviceUrl {service_url}", "POST", "/api/messages",
                      json.dumps(activity).encode(), {400})
        assert time.monotonic() - started < 5, f"{service_url} was retried"
