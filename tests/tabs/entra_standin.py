"""Entra ID's published keys for a tenant, over a real socket: the OpenID configuration and
a JWKS, and tokens signed as Entra signs Teams SSO tokens (or not, for the tests that need a
bad one)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.standins.server import StandinServer

TENANT = "11111111-2222-3333-4444-555555555555"
APP_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
HOST = "switchboard.contoso.example"
AUDIENCE = f"api://{HOST}/{APP_ID}"


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class EntraKeys(StandinServer):
    """`authority` is what SWITCHBOARD_AUTHORITY names: {authority}/{tenant}/v2.0/... ."""

    def __init__(self) -> None:
        super().__init__()
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "entra-key-1"
        self.metadata_fetches = 0
        self.stall = 0.0  # seconds the OpenID configuration takes to answer
        self.down = False  # the OpenID configuration answers 503

    @property
    def authority(self) -> str:
        return self.origin

    @property
    def issuer(self) -> str:
        return f"{self.origin}/{TENANT}/v2.0"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self.metadata)
        app.router.add_get("/discovery/v2.0/keys", self.keys)

    async def metadata(self, request: web.Request) -> web.Response:
        self.metadata_fetches += 1
        await asyncio.sleep(self.stall)
        if self.down:
            return web.Response(status=503)
        tenant = request.match_info["tenant"]
        return web.json_response({"issuer": f"{self.origin}/{tenant}/v2.0",
                                  "jwks_uri": f"{self.origin}/discovery/v2.0/keys"})

    async def keys(self, request: web.Request) -> web.Response:
        numbers = self.private.public_key().public_numbers()
        return web.json_response({"keys": [{"kty": "RSA", "use": "sig", "kid": self.kid,
                                            "n": _b64(numbers.n), "e": _b64(numbers.e)}]})

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": AUDIENCE, "tid": TENANT, "scp": "access_as_user",
                  "oid": "00000000-0000-0000-0000-000000000001", "upn": "a1@example.com",
                  "name": "Agent 1", "iat": now - 10, "nbf": now - 10, "exp": now + 3600}
        claims.update(overrides)
        return claims

    def token(self, *, key: Any = None, kid: str | None = None, **overrides: Any) -> str:
        return jwt.encode(self.claims(**overrides), key or self.private, algorithm="RS256",
                          headers={"kid": kid or self.kid})


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """A token with `alg: none` (no signature at all)."""
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{part(claims)}."
