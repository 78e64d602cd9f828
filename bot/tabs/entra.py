"""Entra ID access tokens of Teams single sign-on, checked without blocking the event loop.

A tab asks Teams for a token (`authentication.getAuthToken()`); Entra issues it for the app's
exposed API. It is checked as the Microsoft identity platform says a resource must: RS256
signed by one of the tenant's published keys (fetched with aiohttp and a timeout, cached for a
day, fetched again for an unknown key id at most once per `REFETCH_EVERY`, one fetch shared by
every request waiting for it), issued by the tenant (v1 or v2 issuer), for the audience
`api://<SWITCHBOARD_PUBLIC_HOST>/<MicrosoftAppId>` (v2 tokens may name the app id itself), not
expired (5 minutes of clock skew), with the `access_as_user` scope and a user (`oid`).
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

CLOCK_SKEW = 300  # seconds
KEYS_TTL = 24 * 3600.0  # seconds a fetched key set is trusted before it is fetched again
REFETCH_EVERY = 300.0  # at most one fetch this often for a key id the set does not have
FETCH_TIMEOUT = 5.0  # seconds for each of the two requests of a fetch
SCOPE = "access_as_user"
V1_ISSUER = "https://sts.windows.net/{tenant}/"


class TokenRejected(Exception):
    """The token is not a valid SSO token for this app (the reason, never the token)."""


@dataclass(frozen=True)
class Identity:
    """Who a valid token says is signed in."""

    object_id: str
    upn: str | None
    name: str
    tenant_id: str


@dataclass
class SigningKeys:
    """The tenant's published signing keys, fetched with aiohttp (no thread, a timeout)."""

    session: aiohttp.ClientSession
    metadata_url: str
    now: Callable[[], float] = time.monotonic
    keys: dict[str, Any] = field(default_factory=dict)
    fetched_at: float | None = None
    tried_at: float | None = None
    fetches: int = 0
    _fetching: asyncio.Task[None] | None = None

    async def get(self, kid: str) -> Any:
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
        """One fetch at a time, shared by every caller waiting on it. A failed fetch keeps
        the keys there were (and is not tried again for an unknown key before REFETCH_EVERY)."""
        if self._fetching is None or self._fetching.done():
            self.tried_at = self.now()
            self.fetches += 1
            self._fetching = asyncio.create_task(self._fetch())
        try:
            await asyncio.shield(self._fetching)
        except Exception as exc:  # the endpoint is down, slow or answers nonsense
            log.warning("Entra signing keys not fetched", extra={"error": type(exc).__name__})

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
        keys: dict[str, Any] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or not entry.get("kid"):
                continue
            try:
                keys[str(entry["kid"])] = RSAAlgorithm.from_jwk(json.dumps(entry))
            except (ValueError, KeyError, TypeError):
                continue
        if not keys:
            raise ValueError("the key set holds no RSA key")
        self.keys, self.fetched_at = keys, self.now()


def metadata_url(authority: str, tenant_id: str) -> str:
    """The tenant's OpenID configuration (`organizations` for a multi-tenant app)."""
    return f"{authority.rstrip('/')}/{tenant_id or 'organizations'}/v2.0/.well-known/" \
           "openid-configuration"


class SsoTokenValidator:
    """Checks the bearer token a tab sends and says who it names."""

    def __init__(self, *, app_id: str, public_host: str, tenant_id: str, authority: str,
                 keys: SigningKeys) -> None:
        host = public_host.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
        self.audiences = [f"api://{host}/{app_id}", app_id]
        self.tenant_id = tenant_id
        self.authority = authority.rstrip("/")
        self.keys = keys

    def issuers(self, tenant: str) -> list[str]:
        return [f"{self.authority}/{tenant}/v2.0", V1_ISSUER.format(tenant=tenant)]

    async def check(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenRejected("the token is not a JWT") from None
        if header.get("alg") != "RS256":  # "none", HS256 with the public key as secret...
            raise TokenRejected("the token is not signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("the token names no signing key")
        # A single-tenant app takes its own tenant's tokens only; a multi-tenant one the
        # issuer of the tenant the token names.
        tenant = self.tenant_id or str(unverified.get("tid", ""))
        if not tenant:
            raise TokenRejected("the token names no tenant")
        key = await self.keys.get(kid)
        try:
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=self.audiences,
                                issuer=self.issuers(tenant), leeway=CLOCK_SKEW,
                                options={"require": ["exp", "iss", "aud", "oid"]})
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"the token is not valid: {type(exc).__name__}") from None
        if str(claims.get("tid", tenant)) != tenant:
            raise TokenRejected("the token is for another tenant")
        if SCOPE not in str(claims.get("scp", "")).split():
            raise TokenRejected(f"the token lacks the {SCOPE} scope")
        upn = claims.get("upn") or claims.get("preferred_username")
        return Identity(object_id=str(claims["oid"]), upn=str(upn) if upn else None,
                        name=str(claims.get("name", "")), tenant_id=tenant)
