"""Microsoft Graph and Entra token endpoint stand-ins, and an MSAL HTTP client reaching them."""

from __future__ import annotations

import base64
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.standins.server import StandinServer, error, json_object

_FILTER = re.compile(r"^externalId eq '((?:[^']|'')*)'$")
MAX_TOPIC = 250


class GraphStandin(StandinServer):
    """Graph ``/v1.0`` chats, installedApps and appCatalogs on 127.0.0.1.

    ``base_url`` is what to give ``GraphClient(base_url=...)``. Records every ``POST /chats``
    body in ``chat_requests`` (and created chats in ``chats`` by id), every install in
    ``installed_apps`` as (chat id, body), every catalog ``$filter`` in ``catalog_queries``.
    ``catalog`` maps a manifest (external) id to a catalog app id. With ``expected_token``
    requests without ``Authorization: Bearer <token>`` answer 401.
    """

    def __init__(
        self,
        *,
        catalog: Mapping[str, str] | None = None,
        expected_token: str | None = None,
    ) -> None:
        super().__init__()
        self.catalog: dict[str, str] = dict(catalog or {})
        self.expected_token = expected_token
        self.chat_requests: list[dict[str, Any]] = []
        self.chats: dict[str, dict[str, Any]] = {}
        self.installed_apps: list[tuple[str, dict[str, Any]]] = []
        self.catalog_queries: list[str | None] = []
        self.authorizations: list[str | None] = []
        self._chat_failures: list[tuple[int, int | None]] = []

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1.0"

    def fail_chat_creation(self, status: int = 500, *, times: int | None = None) -> None:
        """Answer ``status`` to the next ``times`` chat creations (all of them if None)."""
        self._chat_failures.append((status, times))

    def clear_failures(self) -> None:
        self._chat_failures.clear()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1.0/chats", self._create_chat)
        app.router.add_post("/v1.0/chats/{chat_id}/installedApps", self._install_app)
        app.router.add_get("/v1.0/appCatalogs/teamsApps", self._catalog)

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization")
        self.authorizations.append(header)
        if self.expected_token is not None and header != f"Bearer {self.expected_token}":
            return error(401, "InvalidAuthenticationToken", "Access token is missing or invalid")
        return None

    async def _create_chat(self, request: web.Request) -> web.Response:
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        body = await json_object(request)
        if body is None:
            return error(400, "BadRequest", "body is not a JSON object")
        self.chat_requests.append(body)
        if self._chat_failures:
            status, times = self._chat_failures[0]
            if times is not None:
                if times <= 1:
                    self._chat_failures.pop(0)
                else:
                    self._chat_failures[0] = (status, times - 1)
            return error(status, "InternalServerError", "injected failure")
        problem = _chat_problem(body)
        if problem is not None:
            return error(400, "BadRequest", problem)
        chat_id = f"19:{uuid.uuid4().hex}@thread.v2"
        chat = {
            "id": chat_id,
            "topic": body.get("topic"),
            "chatType": body["chatType"],
            "webUrl": f"https://teams.microsoft.com/l/chat/{chat_id}/conversations",
        }
        self.chats[chat_id] = {**body, "id": chat_id}
        return web.json_response(chat, status=201)

    async def _install_app(self, request: web.Request) -> web.Response:
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        chat_id = request.match_info["chat_id"]
        body = await json_object(request)
        if body is None or not isinstance(body.get("teamsApp@odata.bind"), str):
            return error(400, "BadRequest", "teamsApp@odata.bind is required")
        if chat_id not in self.chats:
            return error(404, "NotFound", "chat not found")
        app_id = body["teamsApp@odata.bind"].rsplit("/", 1)[-1]
        if app_id not in self.catalog.values():
            return error(404, "NotFound", "app not found in catalog")
        self.installed_apps.append((chat_id, body))
        return web.Response(status=201)

    async def _catalog(self, request: web.Request) -> web.Response:
        refused = self._unauthorized(request)
        if refused is not None:
            return refused
        raw = request.query.get("$filter")
        self.catalog_queries.append(raw)
        wanted: str | None = None
        if raw is not None:
            match = _FILTER.match(raw)
            if match is None:
                return error(400, "BadRequest", "unsupported $filter")
            wanted = match.group(1).replace("''", "'")
        value = [
            {
                "id": catalog_id,
                "externalId": external_id,
                "displayName": "Switchboard",
                "distributionMethod": "organization",
            }
            for external_id, catalog_id in self.catalog.items()
            if wanted is None or external_id == wanted
        ]
        return web.json_response({"value": value})


def _chat_problem(body: Mapping[str, Any]) -> str | None:
    if body.get("chatType") not in ("group", "oneOnOne"):
        return "chatType must be group or oneOnOne"
    topic = body.get("topic")
    if topic is not None and (not isinstance(topic, str) or len(topic) > MAX_TOPIC):
        return "topic is too long"
    members = body.get("members")
    if not isinstance(members, list) or not members:
        return "members are required"
    for member in members:
        if not isinstance(member, dict):
            return "a member is not an object"
        if member.get("@odata.type") != "#microsoft.graph.aadUserConversationMember":
            return "members must be aadUserConversationMember"
        if not isinstance(member.get("user@odata.bind"), str):
            return "user@odata.bind is required"
        if not isinstance(member.get("roles"), list):
            return "roles are required"
    return None


class TokenStandin(StandinServer):
    """Entra ID v2 token endpoint and OpenID discovery document for MSAL.

    MSAL only accepts https authorities: use ``authority_host`` (``https://login.standin.test``)
    with ``instance_discovery=False`` and ``http_client()``, which rewrites that host to this
    server. ``clients`` maps client id to secret; a wrong pair answers 401 invalid_client.
    ``certificates`` maps client id to the certificate of a client that signs a client
    assertion instead (checked as Entra does: signature, ``x5t`` thumbprint, issuer, subject,
    audience the token endpoint). Records every token request's form fields in
    ``token_requests``.
    """

    authority_host = "https://login.standin.test"

    def __init__(
        self,
        *,
        clients: Mapping[str, str] | None = None,
        certificates: Mapping[str, x509.Certificate] | None = None,
        expires_in: int = 3599,
        token_prefix: str = "standin-token",
    ) -> None:
        super().__init__()
        self.clients: dict[str, str] = dict(clients or {})
        self.certificates: dict[str, x509.Certificate] = dict(certificates or {})
        self.expires_in = expires_in
        self.token_prefix = token_prefix
        self.token_requests: list[dict[str, str]] = []
        self.discovery_requests: list[str] = []
        self.issued: list[str] = []

    def http_client(self) -> StandinHttpClient:
        """A synchronous MSAL http client that sends ``authority_host`` here."""
        return StandinHttpClient({self.authority_host: self.origin})

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._discovery)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)

    async def _discovery(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        self.discovery_requests.append(tenant)
        base = f"{self.authority_host}/{tenant}"
        return web.json_response(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
                "response_types_supported": ["code", "id_token", "token"],
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        form["tenant"] = request.match_info["tenant"]
        self.token_requests.append(form)
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "client_credentials only")
        client_id = form.get("client_id", "")
        if "client_assertion" in form:
            if not self._assertion_ok(client_id, form, request.match_info["tenant"]):
                return _oauth_error(401, "invalid_client", "AADSTS700027: Client assertion "
                                                           "failed signature validation")
        elif self.clients and self.clients.get(client_id) != form.get("client_secret"):
            return _oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret")
        if not form.get("scope", "").endswith("/.default"):
            return _oauth_error(400, "invalid_scope", "AADSTS1002012: scope must be /.default")
        token = f"{self.token_prefix}-{len(self.issued) + 1}"
        self.issued.append(token)
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "ext_expires_in": self.expires_in,
                "access_token": token,
            }
        )

    def _assertion_ok(self, client_id: str, form: Mapping[str, str], tenant: str) -> bool:
        certificate = self.certificates.get(client_id)
        if certificate is None or form.get("client_assertion_type") != JWT_BEARER:
            return False
        assertion = form["client_assertion"]
        thumbprint = base64.urlsafe_b64encode(certificate.fingerprint(hashes.SHA1()))
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, certificate.public_key(),  # type: ignore[arg-type]
                                algorithms=["RS256", "PS256"],
                                audience=f"{self.authority_host}/{tenant}/oauth2/v2.0/token",
                                issuer=client_id, options={"require": ["exp", "aud", "iss"]})
        except jwt.PyJWTError:
            return False
        return (claims.get("sub") == client_id
                and header.get("x5t", "").rstrip("=") == thumbprint.decode().rstrip("="))


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


class StandinResponse:
    """The response shape MSAL reads: status_code, text, headers, raise_for_status()."""

    def __init__(self, status_code: int, text: str, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.text = text
        self.headers = dict(headers)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise RuntimeError(f"HTTP {self.status_code}: {self.text[:200]}")


class StandinHttpClient:
    """Synchronous HTTP client (stdlib) for MSAL that rewrites https origins to local ones."""

    def __init__(self, rewrites: Mapping[str, str], *, timeout: float = 10.0) -> None:
        self._rewrites = dict(rewrites)
        self._timeout = timeout
        self.calls: list[tuple[str, str]] = []

    def get(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> StandinResponse:
        return self._send("GET", url, params, None, headers)

    def post(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> StandinResponse:
        return self._send("POST", url, params, data, headers)

    def close(self) -> None:
        """Nothing to release (one connection per request)."""

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        data: Mapping[str, str] | str | bytes | None,
        headers: Mapping[str, str] | None,
    ) -> StandinResponse:
        target = self._rewrite(url)
        if params:
            separator = "&" if "?" in target else "?"
            target = f"{target}{separator}{urllib.parse.urlencode(params)}"
        payload: bytes | None
        send_headers = {k: v for k, v in (headers or {}).items() if v is not None}
        if isinstance(data, Mapping):
            payload = urllib.parse.urlencode(data).encode()
            send_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif isinstance(data, str):
            payload = data.encode()
        else:
            payload = data
        self.calls.append((method, target))
        request = urllib.request.Request(target, data=payload, headers=send_headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return StandinResponse(
                    response.status, response.read().decode(), dict(response.headers.items())
                )
        except urllib.error.HTTPError as exc:
            return StandinResponse(exc.code, exc.read().decode(), dict(exc.headers.items()))

    def _rewrite(self, url: str) -> str:
        for prefix, origin in self._rewrites.items():
            if url.startswith(prefix):
                return origin + url[len(prefix) :]
        raise ValueError(f"StandinHttpClient has no rewrite for {url}")
