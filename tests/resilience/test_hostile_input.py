"""Malformed and hostile input at every endpoint: 4xx with a message, never 500, no change.

One server (`python -m bot`, local mode) holds a fixed state for the whole module: agent X in
a connected chat with Jane (task 1), agent Y ringing for Bob (task 2; ring timeout 10 min, so
nothing moves on its own). Every request below is checked for its status and message, and a
full snapshot of every table is taken before and after it: nothing may change.

Card actions are Universal Actions: Teams expects an invoke answer of 200 with a card, so a
refused action (someone else's offer, a session that does not exist) is a 200 whose card says
why, not a 4xx. Unknown invoke names answer 501 with a message, as Bot Framework handlers do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from yarl import URL

from tests import teams_activities as act
from tests.resilience.harness import (
    API,
    Customer,
    ServerStage,
    accept_into_chat,
    attach,
    card_text,
    make_customer,
    quiet,
    registered,
    staged,
)
from tests.support.http import post_json
from tests.support.teams import TeamsAgent
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

MALLORY = "29:mallory"


@dataclass
class Stage(ServerStage):
    x: TeamsAgent  # in a connected chat with jane
    y: TeamsAgent  # ringing for bob
    jane: Customer
    bob: Customer
    x_session: str
    x_card: str
    y_session: str
    y_card: str

    def activity(self, kind: str = "message", *, user: str = MALLORY,
                 conversation: str = "a:personal-mallory", **fields: Any) -> dict[str, Any]:
        base = act.message(self.connector.service_url, conversation, user, "Mallory", "help")
        base["type"] = kind
        if kind != "message":
            base.pop("text")
        base.update(fields)
        return base

    def invoke(self, verb: Any, data: Any, *, user: str = MALLORY,
               conversation: str = "a:personal-mallory") -> dict[str, Any]:
        return self.activity("invoke", user=user, conversation=conversation,
                             name="adaptiveCard/action",
                             value={"action": {"type": "Action.Execute", "verb": verb,
                                               "data": data}})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stage]:
    workdir: Path = tmp_path_factory.mktemp("hostile")
    async with staged(workdir, ring_timeout="10m", acw="2s", members=2) as base:
        agents = await registered(base.server, base.connector, base.client, 2)
        jane = make_customer(base.server, base.client)
        bob = make_customer(base.server, base.client)
        await jane.open("Hi", name="Jane Doe")
        [jane_offer] = await eventually(lambda: base.db.shown(jane.chat_id))
        x = next(a for a in agents if a.user_id == jane_offer["agent_id"])
        y = next(a for a in agents if a is not x)
        await accept_into_chat(x, jane_offer)
        await bob.open("Hello", name="Bob Roe")
        [bob_offer] = await eventually(lambda: base.db.shown(bob.chat_id))
        assert bob_offer["agent_id"] == y.user_id
        await quiet(base.db)
        yield Stage(**vars(base), x=x, y=y, jane=jane, bob=bob, x_session=jane_offer["id"],
                    x_card=jane_offer["card_id"], y_session=bob_offer["id"],
                    y_card=bob_offer["card_id"])


@pytest.fixture(autouse=True)
def _show_log(request: pytest.FixtureRequest, stage: Stage) -> None:
    attach(request.node, stage.server)


# -- plumbing ----------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    body: Any

    @property
    def message(self) -> str:
        """The human-readable reason an error answer carries (JSON or aiohttp's plain text)."""
        body = self.body
        if isinstance(body, dict):
            if isinstance(body.get("value"), dict):  # an invoke error: {statusCode, value}
                body = body["value"]
            found = body.get("message") or body.get("error")
            return found if isinstance(found, str) else json.dumps(found or "")
        return str(body or "")



async def send(stage: Stage, method: str, path: str, *, body: Any = None,
               data: bytes | None = None, headers: dict[str, str] | None = None) -> Answer:
    url = path if path.startswith("http") else f"{stage.url}{path}"
    if data is not None:
        headers = {"Content-Type": "application/json", **(headers or {})}
    status, answer = await post_json(stage.client, URL(url, encoded=True), body, data=data,
                                     headers=headers, method=method, timeout=30)
    return Answer(int(status), answer)


async def raw_http(stage: Stage, request: bytes) -> int:
    """Bytes on a socket, for what aiohttp's client will not send (e.g. non-UTF-8 headers)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", stage.server.port)
    try:
        writer.write(request)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    return int(status_line.split()[1])


async def unchanged(stage: Stage, request: Callable[..., Awaitable[Answer]], *args: Any,
                    **kwargs: Any) -> Answer:
    """Run `request(*args, **kwargs)`; assert no table changed (nor after the jobs it starts)."""
    before = stage.db.snapshot()
    answer = await request(*args, **kwargs)
    await quiet(stage.db)  # jobs a request arms are committed with it: wait for them to run
    after = stage.db.snapshot()
    changed = [t for t in before if before[t] != after.get(t)]
    assert not changed, f"tables changed: {changed} (answer {answer})"
    return answer


def check(answer: Answer, expected: set[int], case: str) -> None:
    assert answer.status in expected, (case, answer.status, str(answer.body)[:300])
    assert answer.status != 500, case
    if 400 <= answer.status < 600:
        assert answer.message.strip(), (case, "an error without a message", answer.body)


async def messages_post(stage: Stage, payload: Any) -> Answer:
    if isinstance(payload, bytes):
        return await send(stage, "POST", "/api/messages", data=payload)
    return await send(stage, "POST", "/api/messages", body=payload)


# -- /api/messages -------------------------------------------------------------------------

async def test_malformed_activities_get_a_4xx_with_a_message(stage: Stage) -> None:
    svc = stage.connector.service_url
    good = stage.activity()
    missing = {key: {k: v for k, v in good.items() if k != key}
               for key in ("type", "conversation", "serviceUrl", "from")}
    cases: dict[str, tuple[Any, set[int]]] = {
        "not JSON": (b"{not json", {400}),
        "not UTF-8": (b'{"type": "\xff"}', {400}),
        "a JSON array": (b"[1, 2]", {400}),
        "a JSON string": (b'"message"', {400}),
        "null": (b"null", {400}),
        "empty object": ({}, {400}),
        **{f"no {key}": (body, {400}) for key, body in missing.items()},
        "conversation without id": ({**good, "conversation": {"name": "x"}}, {400}),
        "conversation a string": ({**good, "conversation": "x"}, {400}),
        "from without id": ({**good, "from": {"name": "Mallory"}}, {400}),
        "recipient a string": ({**good, "recipient": "x"}, {400}),
        "timestamp not a date": ({**good, "timestamp": "yesterday"}, {400}),
        "entities a string": ({**good, "entities": "x"}, {400}),
        "membersAdded a string": ({**good, "type": "conversationUpdate", "membersAdded": "x"},
                                  {400}),
        "serviceUrl empty": ({**good, "serviceUrl": ""}, {400}),
        "over 256 KB": ({**good, "text": "x" * 300_000, "serviceUrl": svc}, {413}),
    }
    for case, (payload, expected) in cases.items():
        answer = await unchanged(stage, messages_post, stage, payload)
        check(answer, expected, case)


async def test_odd_but_well_formed_activities_are_answered_and_change_nothing(
        stage: Stage) -> None:
    cases: dict[str, tuple[dict[str, Any], set[int]]] = {
        "unknown activity type": (stage.activity("somethingNew"), {200}),
        "type a number": ({**stage.activity(), "type": 5}, {200, 400}),
        "text an object": (stage.activity(text={"a": 1}), {200, 400}),
        "text a list": (stage.activity(text=["end"]), {200, 400}),
        "text 200 KB": (stage.activity(text="sessions " + "%_\\" * 60_000), {200}),
        "channelData a string": (stage.activity(channelData="x"), {200, 400}),
        "value with a non-string verb": (stage.activity(value={"verb": 5}), {200, 400}),
        "unknown invoke": (stage.activity("invoke", name="foo/bar", value={}), {501}),
        "invoke without a name": (stage.activity("invoke"), {501}),
        "card action without value": (stage.activity("invoke", name="adaptiveCard/action"),
                                      {400}),
        "card action value a string": (stage.activity("invoke", name="adaptiveCard/action",
                                                      value="x"), {400}),
        "card action action a string": (stage.activity(
            "invoke", name="adaptiveCard/action", value={"action": "x"}), {400}),
        "card action verb a number": (stage.invoke(5, {}), {400}),
        "unknown verb": (stage.invoke("format_disk", {}), {200}),
        "search with odd values": (stage.activity(
            "invoke", name="application/search",
            value={"queryText": 5, "queryOptions": "x"}), {200}),
        "search with LIKE wildcards": (stage.activity(
            "invoke", name="application/search", replyToId="nope",
            value={"queryText": "%_\\'--", "queryOptions": {"top": -3}}), {200}),
        "installationUpdate without action": (stage.activity("installationUpdate"), {200}),
        "installationUpdate remove from a stranger": (stage.activity(
            "installationUpdate", action="remove"), {200}),
        "help from a stranger": (stage.activity(text="help"), {200}),
        "status from a stranger": (stage.activity(text="status"), {200}),
        "unregister from a stranger": (stage.activity(text="unregister"), {200}),
    }
    for case, (payload, expected) in cases.items():
        answer = await unchanged(stage, messages_post, stage, payload)
        check(answer, expected, case)


async def test_card_actions_on_someone_elses_work_are_refused_and_change_nothing(
        stage: Stage) -> None:
    x, y = stage.x, stage.y
    hostile_ids: list[Any] = [None, 5, [], {"$ne": None}, "", "../../etc/passwd",
                              "' OR 1=1 --", "%", "x" * 100_000, "\u0000", "🙂"]
    cases: list[tuple[str, dict[str, Any]]] = []
    # Y and a stranger press X's buttons; X and a stranger press Y's.
    for user, conversation, session in ((y.user_id, y.conversation_id, stage.x_session),
                                        (MALLORY, "a:personal-mallory", stage.x_session),
                                        (x.user_id, x.conversation_id, stage.y_session),
                                        (MALLORY, "a:personal-mallory", stage.y_session)):
        for verb in ("accept", "decline", "terminate", "save_wrapup", "end_acw", "extend_acw",
                     "complete", "transfer"):
            data = {"session_id": session, "primary_code": "x", "tags": "a,b",
                    "target_service": "sales"}
            cases.append((f"{user} {verb} {session[:6]}",
                          stage.invoke(verb, data, user=user, conversation=conversation)))
    for session_id in hostile_ids:
        for verb in ("accept", "terminate", "save_wrapup"):
            cases.append((f"{verb} session_id={str(session_id)[:20]!r}",
                          stage.invoke(verb, {"session_id": session_id}, user=x.user_id,
                                       conversation=x.conversation_id)))
    cases.append(("data a list", stage.invoke("accept", [stage.y_session])))
    cases.append(("fill_nar odd request id", stage.invoke(
        "fill_nar", {"nar_reason": "Break", "request_id": {"a": 1}}, user=x.user_id,
        conversation=x.conversation_id)))
    cases.append(("duty odd profile", stage.invoke("duty", {"profile": 5}, user=MALLORY)))
    for case, payload in cases:
        answer = await unchanged(stage, messages_post, stage, payload)
        check(answer, {200}, case)
        assert answer.body["statusCode"] == 200, (case, answer.body)
        assert answer.body["type"] == "application/vnd.microsoft.card.adaptive", case
    # What the owner sees: a refusal names the reason on a card.
    answer = await messages_post(stage, stage.invoke(
        "accept", {"session_id": stage.y_session}, user=x.user_id,
        conversation=x.conversation_id))
    assert "another agent" in card_text(answer.body["value"]), answer.body


async def test_a_stranger_in_an_agents_chat_cannot_speak_or_end_it(stage: Stage) -> None:
    # Local mode: X's chat with Jane runs in X's personal conversation.
    before = [m["text"] for m in stage.db.messages(stage.jane.chat_id)]
    for text in ("end", "transfer sales", "Hello Jane, I am your agent now"):
        for kind in ("personal", "groupChat"):
            payload = act.message(stage.connector.service_url, stage.x.conversation_id,
                                  MALLORY, "Mallory", text, group=kind == "groupChat")
            answer = await unchanged(stage, messages_post, stage, payload)
            check(answer, {200}, f"{kind}: {text}")
    assert [m["text"] for m in stage.db.messages(stage.jane.chat_id)] == before
    assert stage.db.session(stage.x_session)["phase"] == "connected"


async def test_wrong_methods_and_unknown_paths(stage: Stage) -> None:
    cases = [
        ("GET", "/api/messages", {405}),
        ("PUT", "/api/messages", {405}),
        ("DELETE", "/api/messages", {405}),
        ("GET", f"{API}/chats", {405}),
        ("PUT", f"{API}/chats/{stage.jane.chat_id}/messages", {405}),
        ("DELETE", f"{API}/chats/{stage.jane.chat_id}", {404, 405}),
        ("GET", f"{API}/chats/{stage.jane.chat_id}/messages", {405}),
        ("POST", "/healthz", {405}),
        ("GET", "/api/../../etc/passwd", {404}),
        ("GET", "/interact/widget.js/../../../../etc/passwd", {404}),
        ("GET", "/interact/%2e%2e/%2e%2e/bot/config.py", {404}),
        ("GET", "/api/nothing-here", {404}),
    ]
    for method, path, expected in cases:
        answer = await unchanged(stage, send, stage, method, path)
        check(answer, expected, f"{method} {path}")


# -- the Interact API ------------------------------------------------------------------------

async def test_hostile_interact_requests_get_a_4xx_with_a_message(stage: Stage) -> None:
    jane, bob = stage.jane, stage.bob
    chat = f"{API}/chats/{jane.chat_id}"
    wrong_token = {"Authorization": "Bearer " + "A" * 43}
    cases: list[tuple[str, str, str, dict[str, Any], set[int]]] = [
        # (case, method, path, request options, expected statuses)
        ("create: not JSON", "POST", f"{API}/chats", {"data": b"{nope"}, {400}),
        ("create: a JSON list", "POST", f"{API}/chats", {"body": ["sales"]}, {400}),
        ("create: not UTF-8", "POST", f"{API}/chats", {"data": b'{"service":"\xff"}'}, {400}),
        ("create: no service", "POST", f"{API}/chats", {"body": {"text": "hi"}}, {400}),
        ("create: service a list", "POST", f"{API}/chats", {"body": {"service": ["sales"]}},
         {400}),
        ("create: unknown service", "POST", f"{API}/chats", {"body": {"service": "nope"}},
         {404}),
        ("create: service path", "POST", f"{API}/chats", {"body": {"service": "../sales"}},
         {404}),
        ("create: text a number", "POST", f"{API}/chats",
         {"body": {"service": "sales", "text": 5}}, {400}),
        ("create: text over 4 KB", "POST", f"{API}/chats",
         {"body": {"service": "sales", "text": "é" * 3000}}, {413}),
        ("create: body over 64 KB", "POST", f"{API}/chats",
         {"body": {"service": "sales", "pad": "x" * 70_000}}, {413}),
        ("create: customer a string", "POST", f"{API}/chats",
         {"body": {"service": "sales", "customer": "Jane"}}, {400}),
        ("create: customer name too long", "POST", f"{API}/chats",
         {"body": {"service": "sales", "customer": {"name": "x" * 400}}}, {400}),
        ("create: too many params", "POST", f"{API}/chats",
         {"body": {"service": "sales", "customer": {"params": {str(i): "v" for i in
                                                               range(60)}}}}, {400}),
        ("create: nested params", "POST", f"{API}/chats",
         {"body": {"service": "sales", "customer": {"params": {"a": {"b": "c"}}}}}, {400}),
        ("create: foreign origin", "POST", f"{API}/chats",
         {"body": {"service": "sales"}, "headers": {"Origin": "https://evil.example"}}, {403}),
        ("preflight: foreign origin", "OPTIONS", f"{API}/chats",
         {"headers": {"Origin": "https://evil.example",
                      "Access-Control-Request-Method": "POST"}}, {403}),
        ("message: no token", "POST", f"{chat}/messages", {"body": {"text": "x"}}, {401}),
        ("message: not bearer", "POST", f"{chat}/messages",
         {"body": {"text": "x"}, "headers": {"Authorization": f"Basic {jane.token}"}}, {401}),
        ("message: wrong token", "POST", f"{chat}/messages",
         {"body": {"text": "x"}, "headers": wrong_token}, {401}),
        ("message: another chat's token", "POST", f"{chat}/messages",
         {"body": {"text": "x"}, "headers": bob.auth}, {401}),
        ("message: empty text", "POST", f"{chat}/messages",
         {"body": {"text": "   "}, "headers": jane.auth}, {400}),
        ("message: text a list", "POST", f"{chat}/messages",
         {"body": {"text": ["x"]}, "headers": jane.auth}, {400}),
        ("message: text over 4 KB", "POST", f"{chat}/messages",
         {"body": {"text": "x" * 5000}, "headers": jane.auth}, {413}),
        ("message: body over 64 KB", "POST", f"{chat}/messages",
         {"data": b'{"text": "' + b"x" * 70_000 + b'"}', "headers": jane.auth}, {413}),
        ("message: not JSON", "POST", f"{chat}/messages",
         {"data": b"text=x", "headers": jane.auth}, {400}),
        ("end: wrong token", "POST", f"{chat}/end", {"headers": wrong_token}, {401}),
        ("end: another chat's token", "POST", f"{chat}/end", {"headers": bob.auth}, {401}),
        ("ws: wrong token", "GET", f"{chat}/ws?token=nope", {}, {401}),
        ("ws: after not a number", "GET", f"{chat}/ws?token={jane.token}&after=-1", {}, {400}),
    ]
    for chat_id in ("..%2F..%2Fetc%2Fpasswd", "%2e%2e", "%27%20OR%20%271%27%3D%271", "%00", "%FF",
                    "x" * 4000, "%F0%9F%99%82", bob.chat_id + "%2F..%2F" + jane.chat_id):
        cases.append((f"message: chat id {chat_id[:24]!r}", "POST",
                      f"{API}/chats/{chat_id}/messages",
                      {"body": {"text": "x"}, "headers": jane.auth}, {401, 404}))
        cases.append((f"end: chat id {chat_id[:24]!r}", "POST", f"{API}/chats/{chat_id}/end",
                      {"headers": jane.auth}, {401, 404}))
    for case, method, path, options, expected in cases:
        answer = await unchanged(stage, send, stage, method, path, **options)
        check(answer, expected, case)
    # The chats are as they were: Jane's still connected, Bob's still ringing.
    assert stage.db.task_state(jane.chat_id) == "connected"
    assert stage.db.task_state(bob.chat_id) == "ringing"


# -- known bugs: each a strict xfail that turns into a pass when fixed --------------------------

async def test_deeply_nested_json_and_huge_numbers_are_a_400(stage: Stage) -> None:
    nested_activity = b"[" * 50_000 + b"]" * 50_000
    nested_value = json.dumps(stage.activity()).encode()[:-1] + (
        b', "value": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
    huge_number = json.dumps(stage.activity()).encode()[:-1] + b', "value": 1' + b"0" * 5000 + b"}"
    for case, payload in (("nested activity", nested_activity), ("nested value", nested_value),
                          ("huge number", huge_number)):
        answer = await unchanged(stage, messages_post, stage, payload)
        check(answer, {400}, f"/api/messages: {case}")
    for case, payload in (("nested body", b"[" * 30_000 + b"]" * 30_000),
                          ("huge number", b'{"service": 1' + b"0" * 5000 + b"}")):
        answer = await unchanged(stage, send, stage, "POST", f"{API}/chats", data=payload)
        check(answer, {400}, f"interact: {case}")


async def test_a_malformed_mention_is_not_a_500(stage: Stage) -> None:
    for entities in ([{"type": "mention"}], [{"type": "mention", "mentioned": "x"}]):
        answer = await unchanged(stage, messages_post, stage,
                                 stage.activity(text="<at>bot</at> help", entities=entities))
        check(answer, {200, 400}, f"entities {entities}")


async def test_channel_data_tenant_not_an_object_is_not_a_500(stage: Stage) -> None:
    for tenant in ("tenant-1", 5, ["x"]):
        answer = await unchanged(stage, messages_post, stage,
                                 stage.activity(channelData={"tenant": tenant}))
        check(answer, {200, 400}, f"tenant {tenant!r}")


async def test_out_of_range_numbers_in_card_data_are_not_a_500(stage: Stage) -> None:
    x = stage.x
    page = stage.invoke("sessions_page", {"page": 10**30}, user=x.user_id,
                        conversation=x.conversation_id)
    answer = await unchanged(stage, messages_post, stage, page)
    check(answer, {200}, "sessions page 10**30")
    search = stage.activity("invoke", user=x.user_id, conversation=x.conversation_id,
                            name="application/search",
                            value={"queryText": "a", "queryOptions": {"top": 10**30}})
    answer = await unchanged(stage, messages_post, stage, search)
    check(answer, {200}, "search top 10**30")


async def test_a_reply_the_connector_refuses_is_not_a_500(stage: Stage) -> None:
    stage.connector.block_conversation("a:personal-blocked")
    answer = await unchanged(stage, messages_post, stage,
                             stage.activity(conversation="a:personal-blocked", text="help"))
    check(answer, {200, 502, 503}, "reply into a conversation that blocked the bot")
    # Action.Submit fallback whose card (replyToId) the connector does not know.
    answer = await unchanged(stage, messages_post, stage, stage.activity(
        value={"verb": "sessions_page", "page": 0}, replyToId="1:no-such-activity"))
    check(answer, {200, 502, 503}, "update of an unknown card")


async def test_a_non_utf8_bearer_token_is_a_401(stage: Stage) -> None:
    body = b'{"text": "x"}'
    request = (f"POST {API}/chats/{stage.jane.chat_id}/messages HTTP/1.1\r\n"
               f"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n").encode()
    request += b"Authorization: Bearer \xff\xfe\r\n\r\n" + body
    before = stage.db.snapshot()
    status = await raw_http(stage, request)
    assert stage.db.snapshot() == before
    assert status == 401, status


async def test_websocket_after_out_of_range_is_a_400(stage: Stage) -> None:
    jane = stage.jane
    url = URL(f"{stage.url}{API}/chats/{jane.chat_id}/ws?token={jane.token}"
              f"&after={10**25}", encoded=True)
    try:
        async with stage.client.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=5)):
            status = 101
    except aiohttp.WSServerHandshakeError as exc:
        status = exc.status
    assert status == 400, "upgraded instead of refusing the request"
