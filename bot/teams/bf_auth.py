"""Bot Framework channel tokens checked without ever blocking the event loop.

botframework-connector fetches signing keys with a blocking `requests.get` (no timeout) on
the event loop, and fetches again for every token whose key id it does not know: a slow key
endpoint froze every request. Here keys come from bot/signing_keys.py (aiohttp with a timeout,
cached, one shared refetch for an unknown key id at most every 5 minutes), and the token is checked
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

import jwt

from bot.signing_keys import CLOCK_SKEW, PublishedKeys, UnusableToken, rs256_key_id

CHANNEL_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
CHANNEL_ISSUER = "https://api.botframework.com"


class TokenRejected(Exception):
    """The token is not a valid Bot Framework channel token for this bot (the reason only)."""


class ChannelTokenValidator:
    """Checks `Authorization: Bearer <jwt>` of an activity sent by a Bot Framework channel."""

    def __init__(self, app_id: str, keys: PublishedKeys, *, tenant_id: str = "") -> None:
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
            kid = rs256_key_id(token)
        except UnusableToken as unusable:
            raise TokenRejected(str(unusable)) from None
        key = await self.keys.get(kid)
        if key is None:
            raise TokenRejected("the token's signing key is not published")
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
