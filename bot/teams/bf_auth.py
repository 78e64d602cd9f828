"""Bot Framework channel tokens checked without ever blocking the event loop.

botframework-connector fetches signing keys with a blocking `requests.get` (no timeout) on
the event loop, and fetches again for every token whose key id it does not know: a slow key
endpoint froze every request. Here keys are fetched with the app's aiohttp session and a
timeout, cached for a day, fetched again for an unknown key id at most once per
`REFETCH_EVERY` (one fetch shared by every request waiting for it), and the token is checked
as the channel validation of the Bot Framework SDKs does: RS256, issuer
https://api.botframework.com, audience the bot's app id, the key endorsed for the activity's
channel, the `serviceurl` claim equal to the activity's serviceUrl, 5 minutes of clock skew.
A single-tenant bot also refuses a token whose `tid` claim names another tenant, and an
activity from another tenant.

Why not the Agents SDK's JwtTokenValidator (hosting-core 1.9): it fetches keys with PyJWT's
blocking PyJWKClient in a worker thread of the loop's default executor, under a threading lock,
with a 30 s timeout: a stalled key endpoint parks every request that needs a key in that small
pool (min(32, cores + 4) threads), which aiohttp's DNS lookups and MSAL's token calls share; its
issuer check is opt-in; it checks neither the channel endorsement nor the serviceurl claim; and
the Bot Framework key URL is a module constant, so no test can point it at a stand-in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger(__name__)

CHANNEL_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
CHANNEL_ISSUER = "https://api.botframework.com"
CLOCK_SKEW = 300  # seconds
KEYS_TTL = 24 * 3600.0  # seconds a fetched key set is trusted before it is fetched again
REFETCH_EVERY = 300.0  # at most one fetch this often for a key id the set does not have
FETCH_TIMEOUT = 5.0  # seconds for each of the two requests of a fetch


class TokenRejected(Exception):
    """The token is not a valid Bot Framework channel token for this bot (the reason only)."""


@dataclass
class SigningKey:
    key: Any  # an RSA public key object
    endorsements: tuple[str, ...]


@dataclass
class KeySet:
    """The published signing keys, fetched off no thread at all: aiohttp, with a timeout."""

    session: aiohttp.ClientSession
    metadata_url: str = CHANNEL_METADATA_URL
    now: Callable[[], float] = time.monotonic
    keys: dict[str, SigningKey] = field(default_factory=dict)
    fetched_at: float | None = None
    tried_at: float | None = None
    _fetching: asyncio.Task[None] | None = None

    async def get(self, kid: str) -> SigningKey:
        stale = self.fetched_at is None or self.now() - self.fetched_at > KEYS_TTL
        if kid not in self.keys or stale:
            may_fetch = self.tried_at is None or self.now() - self.tried_at >= REFETCH_EVERY
            if stale or may_fetch:
                await self._refresh()
        found = self.keys.get(kid)
        if found is None:
            raise TokenRejected("the token's signing key is not published")
        return found

    async def _refresh(self) -> None:
        """One fetch at a time; every caller waiting on it shares it. A failed fetch keeps
        the keys there were (and is not tried again for an unknown key before REFETCH_EVERY)."""
        if self._fetching is None or self._fetching.done():
            self.tried_at = self.now()
            self._fetching = asyncio.create_task(self._fetch())
        try:
            await asyncio.shield(self._fetching)
        except Exception as exc:  # the endpoint is down, slow or answers nonsense
            log.warning("signing keys not fetched", extra={"error": type(exc).__name__})

    async def _fetch(self) -> None:
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
        async with self.session.get(self.metadata_url, timeout=timeout) as reply:
            reply.raise_for_status()
            metadata = await reply.json(content_type=None)
        jwks_uri = metadata.get("jwks_uri") if isinstance(metadata, dict) else None
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise ValueError("the OpenID metadata has no jwks_uri")
        async with self.session.get(jwks_uri, timeout=timeout) as reply:
            reply.raise_for_status()
            document = await reply.json(content_type=None)
        keys: dict[str, SigningKey] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not entry.get("kid"):
                continue
            try:
                public = RSAAlgorithm.from_jwk(json.dumps(entry))
            except (ValueError, KeyError, TypeError):
                continue
            endorsements = entry.get("endorsements") or []
            keys[str(entry["kid"])] = SigningKey(
                public, tuple(e for e in endorsements if isinstance(e, str)))
        if not keys:
            raise ValueError("the key set holds no RSA key")
        self.keys, self.fetched_at = keys, self.now()


class ChannelTokenValidator:
    """Checks `Authorization: Bearer <jwt>` of an activity sent by a Bot Framework channel."""

    def __init__(self, app_id: str, keys: KeySet, *, tenant_id: str = "") -> None:
        self.app_id = app_id
        self.keys = keys
        self.tenant_id = tenant_id  # set for a single-tenant bot: only its tenant gets in

    async def check(self, auth_header: str, *, channel_id: str, service_url: str,
                    tenant: str = "") -> None:
        scheme, _, token = auth_header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRejected("expected 'Authorization: Bearer <token>'")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("the token is not a JWT") from None
        if header.get("alg") != "RS256":  # "none", HS256 with the public key as secret...
            raise TokenRejected("the token is not signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("the token names no signing key")
        key = await self.keys.get(kid)
        if channel_id and key.endorsements and channel_id not in key.endorsements:
            raise TokenRejected("the signing key is not endorsed for this channel")
        try:
            claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=self.app_id,
                                issuer=CHANNEL_ISSUER, leeway=CLOCK_SKEW,
                                options={"require": ["exp", "iss", "aud"]})
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"the token is not valid: {type(exc).__name__}") from None
        if claims.get("serviceurl") != service_url:
            raise TokenRejected("the token was issued for another serviceUrl")
        if self.tenant_id:
            if "tid" in claims and claims["tid"] != self.tenant_id:
                raise TokenRejected("the token was issued for another tenant")
            if tenant and tenant != self.tenant_id:
                raise TokenRejected("the activity comes from another tenant")
