"""The managed-identity endpoint of Azure Container Apps (IDENTITY_ENDPOINT / IDENTITY_HEADER)."""

from __future__ import annotations

import time

from aiohttp import web

from tests.standins.server import StandinServer


class IdentityStandin(StandinServer):
    """``GET /msi/token?resource=&api-version=2019-08-01&client_id=`` with ``X-IDENTITY-HEADER``.

    Answers as Container Apps does: ``access_token``, ``expires_on`` (epoch seconds, a string),
    ``resource``, ``token_type``, ``client_id``. A wrong header is 401; a client id that is not
    the identity's is 400. Tokens are ``mi-<resource host>-<n>``; ``requests`` records the
    query of each request.
    """

    def __init__(self, *, client_id: str, header: str = "identity-header-secret",
                 expires_in: int = 3600) -> None:
        super().__init__()
        self.client_id = client_id
        self.header = header
        self.expires_in = expires_in
        self.requests: list[dict[str, str]] = []
        self.issued: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"{self.origin}/msi/token"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/msi/token", self._token)

    async def _token(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.requests.append(query)
        if request.headers.get("X-IDENTITY-HEADER") != self.header:
            return web.json_response({"statusCode": 401, "message": "Unauthorized"}, status=401)
        if query.get("api-version") != "2019-08-01" or not query.get("resource"):
            return web.json_response({"error": {"code": "invalid_request",
                                                "message": "resource and api-version"}},
                                     status=400)
        if query.get("client_id") != self.client_id:
            return web.json_response({"error": {"code": "invalid_request", "message":
                                                "No User Assigned identity for this client"}},
                                     status=400)
        resource = query["resource"]
        host = resource.split("://", 1)[-1].split("/", 1)[0]
        token = f"mi-{host}-{len(self.issued) + 1}"
        self.issued.append(token)
        return web.json_response({
            "access_token": token,
            "expires_on": str(int(time.time()) + self.expires_in),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": self.client_id,
        })
