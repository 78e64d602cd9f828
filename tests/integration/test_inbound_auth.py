"""Bot Framework tokens on /api/messages: checked against a local key set, and a slow key
endpoint never holds up anything else (the keys are fetched with a timeout, off no thread,
and not again for every unknown key id)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests import teams_activities as act
from tests.builders import catalog
from tests.responsiveness import healthz_delays
from tests.standins.graph import TokenStandin
from tests.support.world import World, running_world

APP_ID = "00000000-0000-0000-0000-00000000b077"
ISSUER = "https://api.botframework.com"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class KeyEndpoint:
    """OpenID metadata and a JWKS, as login.botframework.com publishes them; can stall."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"
        self.stall = 0.0
        self.fetches = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    def jwk(self) -> dict[str, Any]:
        numbers = self.private.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "n": _b64(numbers.n),
                "e": _b64(numbers.e), "endorsements": ["msteams"]}

    async def metadata(self, request: web.Request) -> web.Response:
        self.fetches += 1
        await asyncio.sleep(self.stall)
        return web.json_response({"issuer": ISSUER, "jwks_uri": f"{self.url}/keys"})

    async def keys(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.jwk()]})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/openid", self.metadata)
        app.router.add_get("/keys", self.keys)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    def token(self, service_url: str, **overrides: Any) -> str:
        claims = {"iss": ISSUER, "aud": APP_ID, "serviceurl": service_url,
                  "exp": int(time.time()) + 600, "nbf": int(time.time()) - 10}
        headers = {"kid": overrides.pop("kid", self.kid)}
        key = overrides.pop("key", self.private)
        claims.update(overrides)
        return jwt.encode(claims, key, algorithm="RS256", headers=headers)


@pytest.fixture
async def keys() -> AsyncIterator[KeyEndpoint]:
    endpoint = KeyEndpoint()
    await endpoint.start()
    yield endpoint
    assert endpoint.runner is not None
    await endpoint.runner.cleanup()


@asynccontextmanager
async def bot_world(tmp_path: Path, keys: KeyEndpoint, **settings: Any) -> AsyncIterator[World]:
    """A bot with an app id that checks inbound tokens against `keys`; its replies go out
    with a token of its own, from an Entra stand-in."""
    async with TokenStandin(clients={APP_ID: "secret"}) as tokens, running_world(
            catalog({"id": "sales"}), tmp_path,
            app_options={"bot_openid_metadata": f"{keys.url}/openid",
                         "msal_http_client": tokens.http_client()},
            app_id=APP_ID, app_password="secret", authority=tokens.authority_host,
            service_url_hosts=("127.0.0.1",), **settings) as opened:
        yield opened


@pytest.fixture
async def world(tmp_path: Path, keys: KeyEndpoint) -> AsyncIterator[World]:
    async with bot_world(tmp_path, keys) as opened:
        yield opened


@pytest.fixture
async def single_tenant_world(tmp_path: Path, keys: KeyEndpoint) -> AsyncIterator[World]:
    """A single-tenant bot of the tenant the test activities come from."""
    async with bot_world(tmp_path, keys, app_type="SingleTenant", tenant_id=act.TENANT) as opened:
        yield opened


def activity(world: World) -> dict[str, Any]:
    return act.message(world.connector.service_url, "a:personal-1", "29:agent-1", "Agent 1",
                       "help")


async def post(world: World, body: dict[str, Any], token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with world.client.post(world.server.make_url("/api/messages"), json=body,
                                 headers=headers) as response:
        return response.status


async def test_a_valid_channel_token_is_accepted(world: World, keys: KeyEndpoint) -> None:
    body = activity(world)
    assert await post(world, body, keys.token(body["serviceUrl"])) == 200


async def test_every_kind_of_bad_token_is_a_401(world: World, keys: KeyEndpoint) -> None:
    body = activity(world)
    url = body["serviceUrl"]
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unsigned = jwt.encode({"iss": ISSUER, "aud": APP_ID, "serviceurl": url,
                           "exp": int(time.time()) + 600}, None, algorithm="none",
                          headers={"kid": keys.kid})
    cases = {
        "no header": None,
        "not a JWT": "garbage",
        "wrong audience": keys.token(url, aud="another-bot"),
        "wrong issuer": keys.token(url, iss="https://sts.windows.net/evil/"),
        "expired": keys.token(url, exp=int(time.time()) - 3600),
        "bad signature": keys.token(url, key=stranger),
        "alg none": unsigned,
        "other serviceUrl": keys.token("https://smba.trafficmanager.net/evil/"),
        "unknown key": keys.token(url, kid="key-9"),
    }
    for case, token in cases.items():
        assert await post(world, body, token) == 401, case


async def test_a_single_tenant_bot_refuses_other_tenants(
        single_tenant_world: World, keys: KeyEndpoint) -> None:
    world = single_tenant_world
    body = activity(world)
    url = body["serviceUrl"]
    assert await post(world, body, keys.token(url)) == 200
    assert await post(world, body, keys.token(url, tid=act.TENANT)) == 200
    assert await post(world, body, keys.token(url, tid="another-tenant")) == 401
    stranger = act.activity("message", url, "a:personal-2", "29:agent-9", "Agent 9",
                            tenant="another-tenant", text="help")
    assert await post(world, stranger, keys.token(url)) == 401


async def test_a_stalled_key_endpoint_does_not_hold_up_other_requests(
        world: World, keys: KeyEndpoint) -> None:
    keys.stall = 3.0
    body = activity(world)
    forged = [asyncio.create_task(post(world, body, keys.token(body["serviceUrl"],
                                                              kid=f"forged-{n}")))
              for n in range(3)]
    await asyncio.sleep(0.2)  # the forged tokens wait for the stalled fetch
    async with healthz_delays(world.client, world.server.make_url("/healthz")) as delays:
        await asyncio.sleep(0.5)
    assert delays and max(delays) < 0.1, f"/healthz took {max(delays) * 1000:.0f} ms"
    assert await asyncio.gather(*forged) == [401, 401, 401]
    assert keys.fetches == 1  # one fetch shared by all three


async def test_unknown_key_ids_do_not_fetch_the_keys_again_and_again(
        world: World, keys: KeyEndpoint) -> None:
    body = activity(world)
    assert await post(world, body, keys.token(body["serviceUrl"])) == 200
    for n in range(5):
        assert await post(world, body, keys.token(body["serviceUrl"], kid=f"x-{n}")) == 401
    assert keys.fetches <= 2  # the first fetch, and at most one for an unknown id
