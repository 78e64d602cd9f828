"""App-only access tokens (Bot Framework, Microsoft Graph) from MSAL client credentials."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, cast

import msal

from bot.teams.clock import Clock, MonotonicClock

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
BOT_FRAMEWORK_TENANT = "botframework.com"


class TokenProvider(Protocol):
    """Something that hands out a bearer token for one audience."""

    async def get_token(self) -> str:
        """Return a currently valid access token."""
        ...


class TokenError(Exception):
    """The identity platform refused to issue a token."""

    def __init__(self, error: str, description: str | None) -> None:
        self.error = error
        self.description = description
        super().__init__(f"token request failed: {error}: {description or ''}".rstrip(": "))


class StaticTokenProvider:
    """Always the same token (tests, or a token obtained elsewhere)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self) -> str:
        return self._token


class MsalTokenProvider:
    """Client-credentials tokens for one scope via ``msal.ConfidentialClientApplication``.

    MSAL's calls block (discovery and token requests use a synchronous HTTP client), so they
    run in a worker thread. The token is kept until ``refresh_margin`` seconds before it
    expires; concurrent callers share a single request. The MSAL application is created on
    first use because its constructor already fetches the OpenID discovery document.
    ``tenant`` defaults to ``botframework.com`` (multi-tenant Bot Framework); Graph needs the
    real tenant id.

    Pointing MSAL at a local stand-in: MSAL refuses non-https authorities, so give it an
    https ``authority_host`` that does not exist (e.g. ``https://login.standin.test``), pass
    ``instance_discovery=False`` (no call to login.microsoftonline.com to vet that host) and
    an ``http_client``: any object with ``get(url, params=None, headers=None, **kw)`` and
    ``post(url, params=None, data=None, headers=None, **kw)`` returning a response with
    ``status_code``, ``text``, ``headers`` and ``raise_for_status()``. A client that rewrites
    ``https://login.standin.test`` to ``http://127.0.0.1:<port>`` makes MSAL fetch the OpenID
    discovery document (``/{tenant}/v2.0/.well-known/openid-configuration``) and the token
    (``/{tenant}/oauth2/v2.0/token``) from the stand-in (``tests/standins/graph.py``:
    ``TokenStandin.http_client()``).
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        scope: str,
        tenant: str | None = None,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        http_client: object | None = None,
        instance_discovery: bool | None = None,
        timeout: float = 30.0,
        refresh_margin: float = 300.0,
        clock: Clock | None = None,
    ) -> None:
        if not authority_host.startswith("https://"):
            raise ValueError("MSAL requires an https authority host")
        self.client_id = client_id
        self.scope = scope
        self.authority = f"{authority_host.rstrip('/')}/{tenant or BOT_FRAMEWORK_TENANT}"
        self._client_secret = client_secret
        self._http_client = http_client
        self._instance_discovery = instance_discovery
        self._timeout = timeout
        self._refresh_margin = refresh_margin
        self._clock: Clock = clock or MonotonicClock()
        self._app: Any = None
        self._token: str | None = None
        self._expires_at = float("-inf")
        self._lock = asyncio.Lock()
        self.requests = 0

    async def get_token(self) -> str:
        token = self._valid_token()
        if token is not None:
            return token
        async with self._lock:
            token = self._valid_token()
            if token is not None:
                return token
            result = await asyncio.to_thread(self._acquire)
            self.requests += 1
            access_token = result.get("access_token")
            if not isinstance(access_token, str) or not access_token:
                raise TokenError(
                    str(result.get("error", "no_access_token")),
                    cast("str | None", result.get("error_description")),
                )
            expires_in = float(result.get("expires_in", 3600))
            self._token = access_token
            self._expires_at = self._clock.now() + max(0.0, expires_in - self._refresh_margin)
            return access_token

    def invalidate(self) -> None:
        """Forget the kept token (e.g. after a 401); MSAL's own cache still applies."""
        self._token = None
        self._expires_at = float("-inf")

    def _valid_token(self) -> str | None:
        if self._token is not None and self._clock.now() < self._expires_at:
            return self._token
        return None

    def _acquire(self) -> dict[str, Any]:
        if self._app is None:
            self._app = msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self._client_secret,
                authority=self.authority,
                http_client=self._http_client,
                instance_discovery=self._instance_discovery,
                timeout=self._timeout,
            )
        result = self._app.acquire_token_for_client(scopes=[self.scope])
        return cast("dict[str, Any]", result) if isinstance(result, dict) else {}


def bot_framework_tokens(
    app_id: str,
    app_password: str,
    *,
    tenant_id: str | None = None,
    authority_host: str = DEFAULT_AUTHORITY_HOST,
    http_client: object | None = None,
    instance_discovery: bool | None = None,
) -> MsalTokenProvider:
    """Tokens for the Bot Connector (single-tenant bots pass their tenant id)."""
    return MsalTokenProvider(
        app_id,
        app_password,
        scope=BOT_FRAMEWORK_SCOPE,
        tenant=tenant_id,
        authority_host=authority_host,
        http_client=http_client,
        instance_discovery=instance_discovery,
    )


def graph_tokens(
    app_id: str,
    app_password: str,
    *,
    tenant_id: str,
    authority_host: str = DEFAULT_AUTHORITY_HOST,
    http_client: object | None = None,
    instance_discovery: bool | None = None,
) -> MsalTokenProvider:
    """App-only tokens for Microsoft Graph in the customer's tenant."""
    return MsalTokenProvider(
        app_id,
        app_password,
        scope=GRAPH_SCOPE,
        tenant=tenant_id,
        authority_host=authority_host,
        http_client=http_client,
        instance_discovery=instance_discovery,
    )
