"""Published JWT signing keys (OpenID metadata, then its JWKS), fetched without blocking the loop.

Both token checks use it: the Bot Framework channel's (bot/teams/bf_auth.py) and Teams single
sign-on's (bot/tabs/entra.py). Keys are fetched with the app's aiohttp session and a timeout,
cached for a day, fetched again (stale, or for an unknown key id) at most once per
`REFETCH_EVERY` (one fetch shared by every request waiting for it); a failed fetch keeps the
keys there were.
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

CLOCK_SKEW = 300  # seconds of leeway on exp/nbf
KEYS_TTL = 24 * 3600.0  # seconds a fetched key set is trusted before it is fetched again
REFETCH_EVERY = 300.0  # at most one fetch this often for a key id the set does not have
FETCH_TIMEOUT = 5.0  # seconds for each of the two requests of a fetch


class UnusableToken(ValueError):
    """Why a token cannot even be checked (not a JWT, not RS256, no key id)."""


@dataclass(frozen=True)
class SigningKey:
    key: Any  # an RSA public key object
    endorsements: tuple[str, ...] = ()  # channels the Bot Framework endorses the key for


@dataclass
class PublishedKeys:
    """The signing keys the OpenID metadata at `metadata_url` points to."""

    session: aiohttp.ClientSession
    metadata_url: str
    now: Callable[[], float] = time.monotonic
    keys: dict[str, SigningKey] = field(default_factory=dict)
    fetched_at: float | None = None
    tried_at: float | None = None
    _fetching: asyncio.Task[None] | None = None

    async def get(self, kid: str) -> SigningKey | None:
        """The key with this id, fetching the set when it is stale or (now and then) when it
        lacks the id; None: not published."""
        stale = self.fetched_at is None or self.now() - self.fetched_at > KEYS_TTL
        if kid not in self.keys or stale:
            may_fetch = self.tried_at is None or self.now() - self.tried_at >= REFETCH_EVERY
            # Without any key there is nothing to answer with; with some, a failing endpoint
            # is asked at most every REFETCH_EVERY, and the keys there are go on serving.
            if may_fetch or not self.keys:
                await self._refresh()
        return self.keys.get(kid)

    async def _refresh(self) -> None:
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


def rs256_key_id(token: str) -> str:
    """The id of the key a token says signed it; UnusableToken unless it is an RS256 JWT."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise UnusableToken("the token is not a JWT") from None
    if header.get("alg") != "RS256":  # "none", HS256 with the public key as secret...
        raise UnusableToken("the token is not signed with RS256")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise UnusableToken("the token names no signing key")
    return kid
