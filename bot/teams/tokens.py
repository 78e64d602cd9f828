"""App-only access tokens (Bot Framework, Microsoft Graph): MSAL client credentials (a secret
or a certificate), or the managed-identity endpoint of the hosting platform."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

import aiohttp
import msal

from bot.teams.clock import Clock, MonotonicClock

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
BOT_FRAMEWORK_RESOURCE = "https://api.botframework.com"
GRAPH_RESOURCE = "https://graph.microsoft.com"
# The managed-identity protocol of Azure Container Apps and App Service (IDENTITY_ENDPOINT,
# IDENTITY_HEADER): GET <endpoint>?resource=...&api-version=...&client_id=...
IDENTITY_API_VERSION = "2019-08-01"
# What MSAL takes as a certificate credential: private_key (PEM), thumbprint (SHA-1, hex) and
# public_certificate (PEM, sent along so that subject name / issuer authentication works).
CertificateCredential = dict[str, str]
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


class _KeptToken:
    """A token kept until `refresh_margin` seconds before it expires; concurrent callers share
    one fetch. Subclasses say how a token is fetched (`_fetch`: the token and its lifetime in
    seconds)."""

    def __init__(self, refresh_margin: float, clock: Clock | None) -> None:
        self._refresh_margin = refresh_margin
        self._clock: Clock = clock or MonotonicClock()
        self._token: str | None = None
        self._expires_at = float("-inf")
        self._lock = asyncio.Lock()
        self.requests = 0  # fetches started

    async def get_token(self) -> str:
        token = self._valid_token()
        if token is not None:
            return token
        async with self._lock:
            token = self._valid_token()
            if token is not None:
                return token
            self.requests += 1
            token, expires_in = await self._fetch()
            self._token = token
            self._expires_at = self._clock.now() + max(0.0, expires_in - self._refresh_margin)
            return token

    def invalidate(self) -> None:
        """Forget the kept token (e.g. after a 401)."""
        self._token = None
        self._expires_at = float("-inf")

    def _valid_token(self) -> str | None:
        if self._token is not None and self._clock.now() < self._expires_at:
            return self._token
        return None

    async def _fetch(self) -> tuple[str, float]:
        raise NotImplementedError


class MsalTokenProvider(_KeptToken):
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
        client_secret: str | CertificateCredential,
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
        self._app: Any = None
        super().__init__(refresh_margin, clock)

    async def _fetch(self) -> tuple[str, float]:
        result = await asyncio.to_thread(self._acquire)
        access_token = result.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise TokenError(
                str(result.get("error", "no_access_token")),
                cast("str | None", result.get("error_description")),
            )
        return access_token, float(result.get("expires_in", 3600))

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


class ManagedIdentityTokenProvider(_KeptToken):
    """Tokens for one resource from the platform's managed-identity endpoint, over aiohttp.

    Azure Container Apps (and App Service) set ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``
    in the container; the endpoint answers ``GET ?resource=&api-version=2019-08-01&client_id=``
    carrying ``X-IDENTITY-HEADER`` with ``access_token`` and ``expires_on`` (epoch seconds).
    ``client_id`` picks the user-assigned identity (the bot's ``MicrosoftAppId``). The token is
    kept until ``refresh_margin`` seconds before it expires; concurrent callers share a request.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        endpoint: str,
        header: str,
        client_id: str,
        resource: str,
        timeout: float = 10.0,
        refresh_margin: float = 300.0,
        clock: Clock | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.session = session
        self.endpoint = endpoint
        self.client_id = client_id
        self.resource = resource
        self._header = header
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._wall_clock = wall_clock
        super().__init__(refresh_margin, clock)

    async def _fetch(self) -> tuple[str, float]:
        params = {"resource": self.resource, "api-version": IDENTITY_API_VERSION,
                  "client_id": self.client_id}
        try:
            async with self.session.get(self.endpoint, params=params,
                                        headers={"X-IDENTITY-HEADER": self._header},
                                        timeout=self._timeout) as reply:
                body = await reply.json(content_type=None)
                status = reply.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise TokenError("managed_identity_unreachable", type(exc).__name__) from None
        if not isinstance(body, dict):
            raise TokenError("managed_identity_error", f"HTTP {status}, not a JSON object")
        token = body.get("access_token")
        if status != 200 or not isinstance(token, str) or not token:
            error = body.get("error")
            code = error.get("code") if isinstance(error, dict) else error
            return_text = body.get("error_description") or (
                error.get("message") if isinstance(error, dict) else None)
            raise TokenError(str(code or f"HTTP {status}"),
                             return_text if isinstance(return_text, str) else None)
        return token, self._expires_in(body)

    def _expires_in(self, body: dict[str, Any]) -> float:
        try:
            if body.get("expires_on") is not None:
                return float(body["expires_on"]) - self._wall_clock()
            return float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            return 0.0  # unreadable: use it now, ask again next time
