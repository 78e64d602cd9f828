"""The one HTTP layer: refusals and a busy store mapped to statuses, one error body, one API-key
check for every API (scopes included)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bot.domain.errors import Invalid, NotFound, Refused, Stale
from bot.domain.service import ApiKey, Catalog
from bot.http import BadBody, HttpError, answering, api_key, bearer_token, read_json_object
from bot.services.external_tasks import TooManyOpen
from bot.services.ports import ConflictError, StoreUnavailable

KEY = "s3cret-key"
CATALOG = Catalog(services={}, api_keys=(
    ApiKey("reports-only", hashlib.sha256(KEY.encode()).hexdigest(), ("sales",),
           ("reporting",)),))


def request(authorization: str | None = None) -> web.Request:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return make_mocked_request("GET", "/", headers=headers)


async def answered(exc: Exception) -> tuple[int, dict[str, str], dict[str, str]]:
    async def handler(_: web.Request) -> web.Response:
        raise exc

    response = await answering(handler, busy="Busy; please retry.")(request())
    assert isinstance(response, web.Response) and response.text is not None
    return response.status, json.loads(response.text), dict(response.headers)


@pytest.mark.parametrize(("exc", "status", "body"), [
    (NotFound("No such task."), 404, {"error": "No such task."}),
    (Stale("Already taken."), 409, {"error": "Already taken."}),
    (Invalid("Too long.", field="title"), 422, {"error": "Too long.", "field": "title"}),
    (Invalid("Bad."), 422, {"error": "Bad."}),
    (Refused("Not yours.", code="forbidden"), 403, {"error": "Not yours."}),
    (Refused("Wrong token.", code="unauthorized"), 401, {"error": "Wrong token."}),
    (Refused("No."), 409, {"error": "No."}),
    (HttpError(413, "Too big."), 413, {"error": "Too big."}),
    (ConflictError("lost a race"), 503, {"error": "Busy; please retry."}),
    (StoreUnavailable("down"), 503, {"error": "Busy; please retry."}),
])
async def test_refusals_and_a_busy_store_get_one_body(exc: Exception, status: int,
                                                      body: dict[str, str]) -> None:
    got_status, got_body, _ = await answered(exc)
    assert (got_status, got_body) == (status, body)


async def test_a_refusal_that_says_when_to_retry_sends_retry_after() -> None:
    status, _, headers = await answered(TooManyOpen("Full."))
    assert (status, headers["Retry-After"]) == (429, "60")


async def test_a_bug_stays_a_500() -> None:
    with pytest.raises(KeyError):
        await answered(KeyError("bug"))


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "Token x"])
def test_no_bearer_token_is_401_with_a_challenge(header: str | None) -> None:
    with pytest.raises(HttpError) as caught:
        bearer_token(request(header), "the chat token", "token")
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"] == "Bearer"
    assert "'Authorization: Bearer <token>'" in caught.value.message


def test_api_key_is_known_by_its_digest_and_checked_for_its_scope() -> None:
    assert api_key(request(f"bearer  {KEY} "), CATALOG, "reporting").name == "reports-only"
    with pytest.raises(HttpError) as wrong:
        api_key(request("Bearer nope"), CATALOG, "reporting")
    assert wrong.value.status == 401
    assert "invalid_token" in wrong.value.headers["WWW-Authenticate"]
    with pytest.raises(HttpError) as scope:
        api_key(request(f"Bearer {KEY}"), CATALOG, "tasks")
    assert scope.value.status == 403 and "'tasks'" in scope.value.message


async def test_a_body_that_arrives_in_pieces_is_read_whole(aiohttp_client: Any) -> None:
    """aiohttp's StreamReader.read(n) answers with what has arrived so far."""
    async def echo(request: web.Request) -> web.Response:
        try:
            return web.json_response(await read_json_object(request, 1024))
        except BadBody as bad:
            return web.json_response({"error": bad.message}, status=bad.status)

    app = web.Application()
    app.router.add_post("/", echo)
    client = await aiohttp_client(app)

    async def pieces() -> AsyncIterator[bytes]:
        yield b'{"text": "first half'
        await asyncio.sleep(0.05)  # the server has read the first piece by now
        yield b' and the second"}'

    reply = await client.post("/", data=pieces())
    assert (reply.status, await reply.json()) == (200, {"text": "first half and the second"})

    async def too_long() -> AsyncIterator[bytes]:
        yield b'{"text": "' + b"x" * 600
        await asyncio.sleep(0.05)
        yield b"y" * 600 + b'"}'

    reply = await client.post("/", data=too_long())
    assert reply.status == 413
