"""Entra ID access tokens of Teams single sign-on, checked without blocking the event loop.

A tab asks Teams for a token (`authentication.getAuthToken()`); Entra issues it for the app's
exposed API. It is checked as the Microsoft identity platform says a resource must: RS256
signed by one of the tenant's published keys (bot/signing_keys.py: fetched without blocking the
loop, cached), issued by the tenant (v1 or v2 issuer), for the audience
`api://<SWITCHBOARD_PUBLIC_HOST>/<MicrosoftAppId>` (v2 tokens may name the app id itself), not
expired (5 minutes of clock skew), with the `access_as_user` scope and a user (`oid`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from bot.signing_keys import CLOCK_SKEW, PublishedKeys, UnusableToken, rs256_key_id

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


def metadata_url(authority: str, tenant_id: str) -> str:
    """The tenant's OpenID configuration (`organizations` for a multi-tenant app)."""
    return f"{authority.rstrip('/')}/{tenant_id or 'organizations'}/v2.0/.well-known/" \
           "openid-configuration"


class SsoTokenValidator:
    """Checks the bearer token a tab sends and says who it names."""

    def __init__(self, *, app_id: str, public_host: str, tenant_id: str, authority: str,
                 keys: PublishedKeys) -> None:
        host = public_host.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
        self.audiences = [f"api://{host}/{app_id}", app_id]
        self.tenant_id = tenant_id
        self.authority = authority.rstrip("/")
        self.keys = keys

    def issuers(self, tenant: str) -> list[str]:
        return [f"{self.authority}/{tenant}/v2.0", V1_ISSUER.format(tenant=tenant)]

    async def check(self, token: str) -> Identity:
        try:
            kid = rs256_key_id(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (UnusableToken, jwt.PyJWTError) as unusable:
            raise TokenRejected(str(unusable) if isinstance(unusable, UnusableToken)
                                else "the token is not a JWT") from None
        # A single-tenant app takes its own tenant's tokens only; a multi-tenant one the
        # issuer of the tenant the token names.
        tenant = self.tenant_id or str(unverified.get("tid", ""))
        if not tenant:
            raise TokenRejected("the token names no tenant")
        key = await self.keys.get(kid)
        if key is None:
            raise TokenRejected("the token's signing key is not published")
        try:
            claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=self.audiences,
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
